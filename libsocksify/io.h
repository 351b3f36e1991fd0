/* Blocking-style I/O with a deadline over any socket, blocking or not: every
 * call uses MSG_DONTWAIT and poll(), so the file status flags the program set
 * are never touched. EINTR is retried; the deadline still holds. */
#ifndef SFY_IO_H
#define SFY_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t sfy_now_ms(void);
/* Returns 0 or a negative errno (-ETIMEDOUT past the deadline). */
int sfy_io_connect(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline);
int sfy_io_send_all(int fd, const void *buf, size_t len, int64_t deadline);
/* Reads exactly len bytes. A close by the peer is -ECONNRESET; *got (may be
 * NULL) tells how many bytes arrived before an error. */
int sfy_io_recv_exact(int fd, void *buf, size_t len, int64_t deadline, size_t *got);
/* Waits for at least one byte and copies up to cap of what has arrived
 * into buf without consuming it (MSG_PEEK). Returns the count (> 0),
 * -ECONNRESET at end of stream, or a negative errno. */
ssize_t sfy_io_peek(int fd, void *buf, size_t cap, int64_t deadline);

#endif
