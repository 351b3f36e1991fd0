/* The real libc functions behind our interposers, looked up once in a
 * constructor with dlsym(RTLD_NEXT) and checked to live in libc, never our
 * own hook. Internal code calls these, not the public names, so it never
 * re-enters a hook. */
#ifndef SFY_REAL_H
#define SFY_REAL_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/types.h>

struct __res_state;

struct sfy_real {
	int (*connect)(int, const struct sockaddr *, socklen_t);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	/* libuv (node, dig) calls sendmmsg/recvmmsg through syscall(). */
	long (*syscall)(long, ...);
	/* _FORTIFY_SOURCE builds call these instead of read/recv/recvfrom. */
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *,
				socklen_t *);
	/* Not hooked today; io.c waits with it, and a future poll() hook must
	 * not see the library's own waits. */
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	/* The readiness hooks (ready.h): the fast paths call these, the
	 * shadow table hides and restores registrations with epoll_ctl. */
	int (*poll_chk)(struct pollfd *, nfds_t, int, size_t);
	int (*ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *,
			 size_t);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
		       const sigset_t *);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	/* fcntl64 is the same function on 64-bit glibc; both are interposed
	 * for F_DUPFD. The third argument is passed as a pointer, as glibc's
	 * own fcntl reads it. */
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	/* A lazily connect()ed UDP socket's source address (hooks_udp.c). */
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	/* SO_ERROR and shutdown() of a pending non-blocking connect (async.h). */
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*shutdown)(int, int);
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	void (*freeaddrinfo)(struct addrinfo *);
	int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *,
			   socklen_t, int);
	int (*getaddrinfo_a)(int, struct gaicb **, int, struct sigevent *);
	/* For the requests glibc queued itself (hooks_gai_a.c). */
	int (*gai_suspend)(const struct gaicb *const[], int, const struct timespec *);
	int (*gai_cancel)(struct gaicb *);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t,
			       struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t,
				struct hostent **, int *);
	struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
	int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t,
			       struct hostent **, int *);
	/* The res_* query API (libc since glibc 2.34; the __res_* names are
	 * aliases of the same functions). */
	int (*res_query)(const char *, int, int, unsigned char *, int);
	int (*res_search)(const char *, int, int, unsigned char *, int);
	int (*res_querydomain)(const char *, const char *, int, int, unsigned char *, int);
	int (*res_send)(const unsigned char *, int, unsigned char *, int);
	int (*res_nquery)(struct __res_state *, const char *, int, int, unsigned char *, int);
	int (*res_nsearch)(struct __res_state *, const char *, int, int, unsigned char *, int);
	int (*res_nquerydomain)(struct __res_state *, const char *, const char *, int, int,
				unsigned char *, int);
	int (*res_nsend)(struct __res_state *, const unsigned char *, int, unsigned char *, int);
	/* The exec family the guard puts the preload back in (execguard.c);
	 * execveat is NULL before glibc 2.34. */
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*execveat)(int, const char *, char *const[], char *const[], int);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*system)(const char *);
	FILE *(*popen)(const char *, const char *);
	int (*pclose)(FILE *);
};

/* Resolved by the library's constructor (or by the first call, if another
 * library's constructor calls a hook before ours ran); thread-safe.
 * Entries a libc lacks stay NULL. */
const struct sfy_real *sfy_real(void);

/* Non-NULL when some real function is not libc's: another interposer sits
 * between this library and libc (one line of text naming the function and
 * the object). The network then fails closed: nothing can be trusted to
 * leave through the proxy. */
const char *sfy_real_refusal(void);

/* Whether the code at addr is glibc's (or a sanitizer runtime's stand-in
 * for it): where a real function may live. */
bool sfy_real_is_glibc(const void *addr);

/* Whether the code at addr belongs to another copy of this very build
 * (LD_PRELOAD naming two paths of it). */
bool sfy_real_same_build(const void *addr);

/* Non-NULL when another copy of this very library (same build) was loaded
 * and skipped: this copy calls libc itself, the other one stays idle. */
const char *sfy_real_other_copy(void);

#endif
