/* The epoll shadow table (ready.h): every socket registration the program
 * makes, so that a socket's registrations can be taken out of the kernel
 * while its set-up is pending and put back when it ends.
 *
 * Epoll sets. They all share one anonymous inode, so a set is known by the
 * numbers that name it: epoll_create*() makes one, dup*() adds a number,
 * close() of its last number forgets it and its registrations. A set the
 * program got elsewhere (exec, SCM_RIGHTS, a raw syscall) is adopted at its
 * first successful epoll_ctl().
 *
 * Registrations. The kernel keys one by (file, fd number) and keeps it
 * until the file's last reference goes; a registration whose number was
 * closed but whose file lives on through a dup stays in the kernel under a
 * number the program cannot name any more. The shadow forgets a
 * registration when its number is closed (what the program can still reach
 * is what matters) and checks the socket's identity (st_dev, st_ino)
 * whenever it acts on one, for closes no hook saw. Only sockets are
 * remembered: nothing else can be pending.
 *
 * States. IN: in the kernel as the program made it. HIDDEN: taken out (or
 * made while pending), to be added back with the stored events and data.
 * PARKED: an EPOLLONESHOT registration that had already fired when its
 * socket was hidden: it stays in the kernel, disarmed, reporting nothing,
 * and stays so at show() -- re-adding it would arm it again. A MOD while
 * pending arms it in the shadow only: then it is HIDDEN.
 *
 * One lock over everything; it is held across non-blocking system calls
 * (fstat, epoll_ctl, a read of /proc/self/fdinfo) and across
 * sfy_async_pending(), which is what makes a registration racing a
 * hide() or show() land in the right state. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "async.h"
#include "fdreg.h"
#include "ready.h"
#include "ready_wait.h"
#include "real.h"

#define NBUCKET 4096

/* The kernel's: events EPOLLEXCLUSIVE may be combined with, and the bits
 * a fired EPOLLONESHOT registration keeps. */
#define EXCLUSIVE_OK (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | \
		      EPOLLEXCLUSIVE)
#define PRIVATE_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)

struct set {
	int names;                      /* fd numbers naming it */
};

struct setnum {
	int fd;
	struct set *set;
	struct setnum *next;
};

enum reg_state { IN, HIDDEN, PARKED };

struct reg {
	struct set *set;
	int fd;
	struct epoll_event ev;          /* as the program gave it */
	dev_t dev;
	ino_t ino;
	enum reg_state state;
	struct reg *by_fd, *by_id;      /* hash chains */
};

atomic_int sfy_ready_watch;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct setnum *setnums;
static struct reg *fd_chain[NBUCKET], *id_chain[NBUCKET];
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void at_prepare(void) { pthread_mutex_lock(&lock); }
static void at_release(void) { pthread_mutex_unlock(&lock); }  /* not give(): no take() */

/* Registered after fdreg's handlers (set up first here), so the prepare
 * handlers run ours first: our lock is taken before fdreg's, the order in
 * which sfy_async_pending() nests them. */
static void fork_setup(void)
{
	(void)sfy_fdreg_owner();
	pthread_atfork(at_prepare, at_release, at_release);
}

/* At load, not at first use: a fork() child must know it is one (the
 * poll family's waiters, ready_wait.c) even when the parent had used only
 * epoll -- a child that first polls a set-up pending in the parent would
 * otherwise wait on an eventfd no driver signals. Order: fdreg's handlers,
 * then the waiters' (their lock nests with no other), then ours. A hook
 * run earlier (another library's constructor) takes the same path. */
__attribute__((constructor)) static void ready_init(void)
{
	(void)sfy_fdreg_owner();
	sfy_ready_wait_setup();
	pthread_once(&fork_once, fork_setup);
}

/* Set on a thread from just before it asks for the lock until it has
 * given it back: a signal handler on that thread that calls close() or
 * dup() (both async-signal-safe) must not wait for a lock its own thread
 * holds. It skips the table; what it closed is found stale later (every
 * registration is checked against the socket's identity before use). */
static __thread bool holding __attribute__((tls_model("initial-exec")));

static void take(void)
{
	pthread_once(&fork_once, fork_setup);
	holding = true;
	pthread_mutex_lock(&lock);
}

static void give(void)
{
	pthread_mutex_unlock(&lock);
	holding = false;
}

static unsigned fd_hash(int fd)
{
	return (unsigned)fd % NBUCKET;
}

static unsigned id_hash(dev_t dev, ino_t ino)
{
	return (unsigned)((ino * 2654435761u) ^ dev) % NBUCKET;
}

/* The socket on fd now: 0, or -1 (EBADF ...; errno kept). */
static int identity(int fd, dev_t *dev, ino_t *ino, bool *sock)
{
	int saved = errno;
	struct stat st;
	int r = fstat(fd, &st);
	errno = saved;
	if (r < 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	if (sock)
		*sock = S_ISSOCK(st.st_mode);
	return 0;
}

static bool still(const struct reg *r)
{
	dev_t dev;
	ino_t ino;
	return identity(r->fd, &dev, &ino, NULL) == 0 && dev == r->dev && ino == r->ino;
}

/* ------------------------------------------------------------ sets */

static struct set *set_of(int epfd)
{
	for (struct setnum *n = setnums; n; n = n->next)
		if (n->fd == epfd)
			return n->set;
	return NULL;
}

/* A number naming s (the kernel needs one to change its registrations). */
static int number_of(const struct set *s)
{
	for (struct setnum *n = setnums; n; n = n->next)
		if (n->set == s)
			return n->fd;
	return -1;
}

static bool name_set(int epfd, struct set *s)
{
	struct setnum *n = malloc(sizeof(*n));
	if (!n)
		return false;
	n->fd = epfd;
	n->set = s;
	n->next = setnums;
	setnums = n;
	s->names++;
	atomic_fetch_add(&sfy_ready_watch, 1);
	return true;
}

static struct set *new_set(int epfd)
{
	struct set *s = calloc(1, sizeof(*s));
	if (s && !name_set(epfd, s)) {
		free(s);
		s = NULL;
	}
	return s;
}

/* ------------------------------------------------------------ registrations */

static struct reg *find(const struct set *s, int fd)
{
	for (struct reg *r = fd_chain[fd_hash(fd)]; r; r = r->by_fd)
		if (r->set == s && r->fd == fd)
			return r;
	return NULL;
}

static struct reg *insert(struct set *s, int fd, const struct epoll_event *ev, dev_t dev,
			  ino_t ino, enum reg_state st)
{
	struct reg *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	*r = (struct reg){ .set = s, .fd = fd, .ev = *ev, .dev = dev, .ino = ino, .state = st };
	unsigned f = fd_hash(fd), i = id_hash(dev, ino);
	r->by_fd = fd_chain[f];
	fd_chain[f] = r;
	r->by_id = id_chain[i];
	id_chain[i] = r;
	return r;
}

static void unlink_reg(struct reg *r)
{
	struct reg **p;
	for (p = &fd_chain[fd_hash(r->fd)]; *p != r; p = &(*p)->by_fd)
		;
	*p = r->by_fd;
	for (p = &id_chain[id_hash(r->dev, r->ino)]; *p != r; p = &(*p)->by_id)
		;
	*p = r->by_id;
	free(r);
}

/* Every registration matching (set, or fd when set is NULL). */
static void drop_where(const struct set *s, int fd)
{
	if (s) {
		for (unsigned b = 0; b < NBUCKET; b++)
			for (struct reg *r = fd_chain[b], *next; r; r = next) {
				next = r->by_fd;
				if (r->set == s)
					unlink_reg(r);
			}
		return;
	}
	for (struct reg *r = fd_chain[fd_hash(fd)], *next; r; r = next) {
		next = r->by_fd;
		if (r->fd == fd)
			unlink_reg(r);
	}
}

static int kernel(int epfd, int op, int fd, struct epoll_event *ev)
{
	return sfy_real()->epoll_ctl(epfd, op, fd, ev);
}

/* One line of /proc/self/fdinfo/EPFD: "tfd: FD events: HEX data: HEX
 * pos:N ino:HEX sdev:HEX". True with *events when it is r's. */
static bool fdinfo_line(const char *line, const struct reg *r, unsigned *events)
{
	int tfd;
	unsigned long ino;
	const char *p = strstr(line, " ino:");
	return sscanf(line, "tfd: %d events: %x", &tfd, events) == 2 && tfd == r->fd && p &&
	       sscanf(p, " ino:%lx", &ino) == 1 && ino == (unsigned long)r->ino;
}

/* Has r, an EPOLLONESHOT registration in the kernel, already fired? The
 * kernel shows what is left of its events in /proc/self/fdinfo/EPFD (read
 * with plain read(): no stdio, no allocation). Unknown: not fired. */
static bool fired(const struct reg *r, int epfd)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	int saved = errno;
	int f = open(path, O_RDONLY | O_CLOEXEC);
	bool found = false, out = false;
	size_t have = 0;
	while (f >= 0 && !found) {
		ssize_t n = sfy_real()->read(f, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while (!found && (nl = strchr(line, '\n'))) {
			*nl = 0;
			unsigned events;
			if (fdinfo_line(line, r, &events)) {
				found = true;
				out = !(events & ~PRIVATE_BITS);
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);   /* keep a partial line */
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0;               /* no such line is this long */
	}
	if (f >= 0)
		sfy_real()->close(f);
	errno = saved;
	return out;
}

/* ------------------------------------------------------------ hide, show */

void sfy_ready_hide(int fd)
{
	dev_t dev;
	ino_t ino;
	if (!sfy_ready_watching() || !sfy_fdreg_owner() || identity(fd, &dev, &ino, NULL) < 0)
		return;
	take();
	for (struct reg *r = id_chain[id_hash(dev, ino)], *next; r; r = next) {
		next = r->by_id;
		if (r->dev != dev || r->ino != ino || r->state != IN)
			continue;
		int epfd = number_of(r->set);
		if (epfd < 0 || !still(r)) {
			unlink_reg(r);
			continue;
		}
		if ((r->ev.events & EPOLLONESHOT) && fired(r, epfd)) {
			r->state = PARKED;
			continue;
		}
		int saved = errno;
		if (kernel(epfd, EPOLL_CTL_DEL, r->fd, NULL) == 0)
			r->state = HIDDEN;
		else
			unlink_reg(r);   /* the kernel had none: nothing to put back */
		errno = saved;
	}
	give();
}

void sfy_ready_replaced(int fd)
{
	dev_t dev;
	ino_t ino;
	if (!sfy_ready_watching() || !sfy_fdreg_owner() || identity(fd, &dev, &ino, NULL) < 0)
		return;
	take();
	/* Move fd's registrations to the new socket's identity (re-linked by
	 * it), then put the live ones into the kernel for the new file. */
	struct reg *moved = NULL;
	for (struct reg *r = fd_chain[fd_hash(fd)], *next; r; r = next) {
		next = r->by_fd;
		if (r->fd != fd)
			continue;
		struct reg **pp;
		for (pp = &id_chain[id_hash(r->dev, r->ino)]; *pp != r; pp = &(*pp)->by_id)
			;
		*pp = r->by_id;
		r->dev = dev;
		r->ino = ino;
		r->by_id = moved;
		moved = r;
	}
	for (struct reg *r = moved, *next; r; r = next) {
		next = r->by_id;
		unsigned i = id_hash(dev, ino);
		r->by_id = id_chain[i];
		id_chain[i] = r;
		int epfd = number_of(r->set);
		if (r->state != IN || epfd < 0)
			continue;
		int saved = errno;
		struct epoll_event ev = r->ev;
		if (kernel(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
			unlink_reg(r);
		errno = saved;
	}
	give();
}

void sfy_ready_show(dev_t dev, ino_t ino)
{
	if (sfy_fdreg_owner() && sfy_ready_watching()) {
		take();
		for (struct reg *r = id_chain[id_hash(dev, ino)], *next; r; r = next) {
			next = r->by_id;
			if (r->dev != dev || r->ino != ino || r->state == IN)
				continue;
			/* A new set-up on the same socket already began (a
			 * connect() again after a failure): it stays hidden. */
			if (sfy_async_pending(r->fd))
				continue;
			int epfd = number_of(r->set);
			if (epfd < 0 || !still(r)) {
				unlink_reg(r);
				continue;
			}
			if (r->state == PARKED) {
				r->state = IN;
				continue;
			}
			int saved = errno;
			struct epoll_event ev = r->ev;
			if (kernel(epfd, EPOLL_CTL_ADD, r->fd, &ev) == 0 || errno == EEXIST)
				r->state = IN;
			else
				unlink_reg(r);
			errno = saved;
		}
		give();
	}
	sfy_ready_wake_waiters();
}

static void closed_locked(int fd);

/* ------------------------------------------------------------ epoll_ctl */

static int fail(int e)
{
	errno = e;
	return -1;
}

static bool is_epoll(int epfd)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", epfd);
	int saved = errno;
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	errno = saved;
	if (n < 0)
		return false;
	link[n] = 0;
	return strcmp(link, "anon_inode:[eventpoll]") == 0;
}

/* EPOLL_CTL_ADD of a socket whose set-up is pending: the kernel's checks
 * (do_epoll_ctl's order), then the registration is stored hidden. */
static int add_hidden(struct set *s, int epfd, int fd, const struct epoll_event *ev,
		      dev_t dev, ino_t ino)
{
	if (sfy_real()->fcntl(epfd, F_GETFD) < 0)
		return fail(EBADF);
	if (!ev)
		return fail(EFAULT);
	if (epfd == fd || (!s && !is_epoll(epfd)))
		return fail(EINVAL);
	if ((ev->events & EPOLLEXCLUSIVE) && (ev->events & ~EXCLUSIVE_OK))
		return fail(EINVAL);
	if (!s && !(s = new_set(epfd)))
		return fail(ENOMEM);
	if (!insert(s, fd, ev, dev, ino, HIDDEN))
		return fail(ENOMEM);
	return 0;
}

/* MOD or DEL of a registration that is not in the kernel (HIDDEN), or is
 * there disarmed (PARKED): the kernel's answer, the shadow's change. */
static int change_out(struct reg *r, int epfd, int op, struct epoll_event *ev)
{
	if (op == EPOLL_CTL_ADD)
		return fail(EEXIST);
	if (op == EPOLL_CTL_DEL) {
		if (r->state == PARKED && kernel(epfd, op, r->fd, ev) < 0)
			return -1;
		unlink_reg(r);
		return 0;
	}
	if (op != EPOLL_CTL_MOD)
		return fail(EINVAL);
	if (!ev)
		return fail(EFAULT);
	if ((ev->events & EPOLLEXCLUSIVE) || (r->ev.events & EPOLLEXCLUSIVE))
		return fail(EINVAL);
	if (r->state == PARKED && kernel(epfd, EPOLL_CTL_DEL, r->fd, NULL) < 0)
		return -1;
	r->ev = *ev;
	r->state = HIDDEN;
	return 0;
}

int sfy_ready_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (!sfy_fdreg_owner())
		return kernel(epfd, op, fd, ev);
	dev_t dev = 0;
	ino_t ino = 0;
	bool sock = false;
	bool known = identity(fd, &dev, &ino, &sock) == 0;
	take();
	struct set *s = set_of(epfd);
	struct reg *r = s ? find(s, fd) : NULL;
	if (r && (!known || r->dev != dev || r->ino != ino)) {
		unlink_reg(r);  /* an earlier socket's, closed where no hook saw */
		r = NULL;
	}
	int ret;
	if (r && r->state != IN) {
		ret = change_out(r, epfd, op, ev);
	} else if (!r && op == EPOLL_CTL_ADD && known && sock && sfy_async_any() &&
		   sfy_async_pending_here(fd)) {
		ret = add_hidden(s, epfd, fd, ev, dev, ino);
	} else {
		ret = kernel(epfd, op, fd, ev);
		int saved = errno;
		if (ret == 0 && op == EPOLL_CTL_ADD && known && sock &&
		    (s || (s = new_set(epfd))))
			insert(s, fd, ev, dev, ino, IN);
		else if (ret == 0 && !s)
			new_set(epfd);  /* adopted: it is an epoll set */
		else if (ret == 0 && r && op == EPOLL_CTL_MOD)
			r->ev = *ev;
		else if (ret == 0 && r && op == EPOLL_CTL_DEL)
			unlink_reg(r);
		errno = saved;
	}
	give();
	return ret;
}

void sfy_ready_epoll_new(int epfd)
{
	if (!sfy_fdreg_owner())
		return;
	int saved = errno;
	take();
	/* Whatever the number named before was closed where no hook saw. */
	closed_locked(epfd);
	new_set(epfd);
	give();
	errno = saved;
}

/* ------------------------------------------------------------ close, dup */

/* Under lock: fd is closed as a registered number and as an epoll set's. */
static void closed_locked(int fd)
{
	drop_where(NULL, fd);
	for (struct setnum **p = &setnums; *p; p = &(*p)->next) {
		struct setnum *n = *p;
		if (n->fd != fd)
			continue;
		*p = n->next;
		atomic_fetch_sub(&sfy_ready_watch, 1);
		if (--n->set->names == 0) {
			drop_where(n->set, -1);
			free(n->set);
		}
		free(n);
		break;
	}
}

/* Should a close/dup hook update the table? Not when nothing is watched,
 * not in a vfork() child, and not from a signal handler on a thread that
 * holds the lock (see `holding`). */
static bool tracking(void)
{
	return !holding && sfy_ready_watching() && sfy_fdreg_owner();
}

void sfy_ready_fd_closed(int fd)
{
	if (!tracking())
		return;
	int saved = errno;
	take();
	closed_locked(fd);
	give();
	sfy_ready_waiter_closed(fd);
	errno = saved;
}

void sfy_ready_fd_close_range(unsigned first, unsigned last)
{
	if (!tracking())
		return;
	int saved = errno;
	take();
	/* The numbers that matter: registered ones and sets'. */
	for (unsigned b = 0; b < NBUCKET; b++)
		for (struct reg *r = fd_chain[b], *next; r; r = next) {
			next = r->by_fd;
			if ((unsigned)r->fd >= first && (unsigned)r->fd <= last)
				unlink_reg(r);
		}
	for (struct setnum *n = setnums, *next; n; n = next) {
		next = n->next;
		if ((unsigned)n->fd >= first && (unsigned)n->fd <= last)
			closed_locked(n->fd);
	}
	give();
	sfy_ready_waiter_close_range(first, last);
	errno = saved;
}

void sfy_ready_fd_dup(int oldfd, int newfd)
{
	if (!tracking())
		return;
	int saved = errno;
	take();
	struct set *s = set_of(oldfd);
	if (s && oldfd != newfd)
		name_set(newfd, s);
	give();
	errno = saved;
}
