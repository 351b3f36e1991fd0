/* io_uring_setup as the syscall() hook sees it (hooks_uring.c). */
#ifndef SFY_URING_H
#define SFY_URING_H

/* io_uring_setup(entries, params) under the io_uring: policy: the real
 * system call when allowed, else -1 with errno ENOSYS (syscall()'s
 * convention). */
long sfy_io_uring_setup(long entries, long params);

#endif
