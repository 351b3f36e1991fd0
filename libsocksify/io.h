/* The TCP connect to hop 1 as two steps, over any socket, blocking or not,
 * without touching the file status flags the program set. */
#ifndef SFY_IO_H
#define SFY_IO_H

#include <stdint.h>
#include <sys/socket.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t sfy_now_ms(void);

/* Starts connecting fd to sa: 0 when connected, -EINPROGRESS when the
 * connect goes on in the background (a non-blocking socket, or a blocking
 * one whose connect outlived the deadline, which bounds it through a
 * temporary SO_SNDTIMEO), or a negative errno. */
int sfy_io_connect_start(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline);

/* Has a connect started by sfy_io_connect_start() ended? 0 connected,
 * -EINPROGRESS not yet, or its error. Never waits. */
int sfy_io_connect_done(int fd);

#endif
