/* connect() on a non-blocking socket, and the driver thread that finishes
 * the chain in the background (async.h).
 *
 * The driver is one thread per process, started by the first pending
 * set-up and gone as soon as none is left (a multithreaded process cannot
 * unshare(CLONE_NEWUSER), and an idle program should not carry a thread).
 * It has its own epoll set, made and driven with raw system calls so the
 * readiness layer (ready.h) never mistakes it for the program's; all
 * signals are blocked in it (glibc's set-id and cancellation signals get
 * through on their own, so setuid() in the program still works); it uses
 * no stdio (log lines are single write()s), never calls into the program
 * and holds its lock only to take new jobs or to decide to exit.
 *
 * Each job works on a private F_DUPFD_CLOEXEC copy of the program's
 * socket, numbered >= 100 like the library's other descriptors, so a
 * close() by the program never pulls the socket from under a step; the
 * copy goes when the set-up ends. On failure the socket is disconnected
 * (connect(AF_UNSPEC)) before the failure is published, so that no byte
 * the program writes after it can reach a hop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "async.h"
#include "bind.h"
#include "async_slot.h"
#include "chainsm.h"
#include "fdreg.h"
#include "io.h"
#include "log.h"
#include "ready.h"
#include "real.h"
#include "sock.h"
#include "thread.h"

/* The longest the driver sleeps without looking at abort flags: an abort
 * asked by a forked child (which cannot wake the parent's driver) or whose
 * wake-up was skipped is seen within this. */
#define ABORT_POLL_MS 250
#define MAX_EVENTS 64

struct job {
	struct job *next;
	struct sfy_chain_sm *sm;
	const struct sfy_config *cfg;
	int pfd;                /* the program's descriptor (for bind.h) */
	struct sfy_aslot *slot;
	uint32_t gen;
	int fd;                 /* the private copy */
	int want;               /* the last step's answer (SFY_SM_*) */
	bool armed;             /* in the epoll set */
	bool ready;             /* epoll reported it */
};

/* Under mu: the driver's existence, its descriptors, new jobs. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool running;
static int ep = -1, evfd = -1;
static struct job *incoming;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The driver's own. */
static struct job *jobs;

/* The private copies, by slot index (fd + 1; 0 none): a forked child
 * closes its inherited copies, which would otherwise keep the parent's
 * tunnels open for the child's whole life. */
static _Atomic int privfd[SFY_ASLOT_N];

/* ------------------------------------------------------------ helpers */

static int raw_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	return (int)sfy_real()->syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

static void disconnect(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	int e = errno;
	(void)sfy_real()->connect(fd, &sa, sizeof(sa));
	errno = e;
}

/* The set-up of pfd succeeded (idfd: a descriptor of the same socket): a
 * BIND may follow for it (bind.h). */
static void note_proxied(int pfd, int idfd, const struct sfy_config *cfg,
			 const struct sfy_chain_sm *sm, const struct sfy_aslot *slot)
{
	struct sfy_chain_report rep;
	struct sockaddr_in6 peer;
	sfy_chain_sm_report(sm, &rep);
	unsigned n = sfy_aslot_peer(slot, (struct sockaddr *)&peer, sizeof(peer));
	sfy_bind_note_proxied(pfd, idfd, cfg, n ? (struct sockaddr *)&peer : NULL, n, &rep);
}

/* The set-up ended (r: 0 up, -errno failed). */
static void job_end(struct job *j, int r)
{
	if (j->armed)
		raw_epoll_ctl(ep, EPOLL_CTL_DEL, j->fd, NULL);
	if (r < 0)
		disconnect(j->fd);
	else
		note_proxied(j->pfd, j->fd, j->cfg, j->sm, j->slot);
	/* An abort by close(): nobody left to report the error to. */
	bool orphan = sfy_aslot_orphan(j->slot, j->gen);
	atomic_store(&privfd[sfy_aslot_index(j->slot)], 0);
	sfy_real()->close(j->fd);
	sfy_aslot_end(j->slot, j->gen, -r, orphan);
	sfy_chain_sm_free(j->sm);
	free(j);
}

static int arm(struct job *j)
{
	struct epoll_event ev = {
		.events = EPOLLONESHOT | (j->want & SFY_SM_IN ? EPOLLIN : 0) |
			  (j->want & SFY_SM_OUT ? EPOLLOUT : 0),
		.data.ptr = j,
	};
	if (raw_epoll_ctl(ep, j->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, j->fd, &ev) < 0)
		return -errno;
	j->armed = true;
	return 0;
}

/* The last descriptor the registry knew of was closed; a descriptor it
 * never saw (dup()ed before connect(), and not used through a hook since)
 * may still hold the socket. Looks for one (not ours) and makes it known:
 * true when the set-up must go on. Rare, so a walk of /proc/self/fd. */
static bool adopt_other(struct job *j)
{
	struct stat me;
	if (fstat(j->fd, &me) < 0)
		return false;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return false;
	bool found = false;
	int dfd = dirfd(d);
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char *end;
		long n = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || n == j->fd || n == dfd || n == ep || n == evfd)
			continue;
		struct stat st;
		if (fstat((int)n, &st) == 0 && st.st_dev == me.st_dev && st.st_ino == me.st_ino &&
		    sfy_fdreg_pending_set((int)n, j->slot, j->gen) == 0)
			found = true;
	}
	closedir(d);
	return found;
}

/* One look at j: steps it when due. True when it ended (j is freed). */
static bool advance(struct job *j, int64_t now, int64_t *next)
{
	if (sfy_aslot_aborted(j->slot, j->gen) && sfy_aslot_orphan(j->slot, j->gen) &&
	    adopt_other(j))
		sfy_aslot_unabort(j->slot, j->gen);
	if (sfy_aslot_aborted(j->slot, j->gen)) {
		/* shutdown() reads ECONNRESET from SO_ERROR afterwards, as
		 * after the kernel's disconnect of a connecting socket. */
		job_end(j, -ECONNRESET);
		return true;
	}
	int64_t due = sfy_chain_sm_deadline(j->sm);
	if (!j->ready && j->want != SFY_SM_RUN && now < due) {
		if (due < *next)
			*next = due;
		return false;
	}
	j->ready = false;
	int r;
	do
		r = sfy_chain_sm_step(j->sm);
	while (r == SFY_SM_RUN && !sfy_aslot_aborted(j->slot, j->gen));
	if (r == SFY_SM_RUN)
		return advance(j, now, next);   /* aborted meanwhile */
	if (r > 0) {
		j->want = r;
		r = arm(j);
		if (r == 0) {
			due = sfy_chain_sm_deadline(j->sm);
			if (due < *next)
				*next = due;
			return false;
		}
	}
	job_end(j, r);
	return true;
}

static void take_incoming(void)
{
	while (incoming) {
		struct job *j = incoming;
		incoming = j->next;
		j->next = jobs;
		jobs = j;
		if (j->want != SFY_SM_RUN) {
			/* Registered here, by the only thread that uses ep. */
			int r = arm(j);
			if (r < 0) {
				j->want = SFY_SM_RUN;   /* the next step will see it */
				j->ready = true;
			}
		}
	}
}

static void *drive(void *arg)
{
	(void)arg;
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		pthread_mutex_lock(&mu);
		take_incoming();
		if (!jobs) {
			/* Decided under mu: a connect() that comes now starts a
			 * new driver. */
			sfy_real()->close(ep);
			sfy_real()->close(evfd);
			ep = evfd = -1;
			running = false;
			pthread_mutex_unlock(&mu);
			return NULL;
		}
		pthread_mutex_unlock(&mu);

		int64_t now = sfy_now_ms(), next = now + ABORT_POLL_MS;
		for (struct job **pp = &jobs; *pp;) {
			struct job *j = *pp;
			struct job *after = j->next;
			if (advance(j, now, &next))
				*pp = after;
			else
				pp = &j->next;
		}
		if (!jobs)
			continue;
		int64_t left = next - sfy_now_ms();
		int tmo = left < 0 ? 0 : left > ABORT_POLL_MS ? ABORT_POLL_MS : (int)left;
		int n = epoll_wait(ep, evs, MAX_EVENTS, tmo);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr) {
				((struct job *)evs[i].data.ptr)->ready = true;
			} else {
				uint64_t v;
				(void)sfy_real()->read(evfd, &v, sizeof(v));
			}
		}
	}
}

/* ------------------------------------------------------------ starting */

static void wake_locked(void)
{
	uint64_t one = 1;
	int e = errno;
	(void)sfy_real()->write(evfd, &one, sizeof(one));
	errno = e;
}

/* The abort hook (async_slot.h), called under the fd registry's lock: a
 * try-lock only (fork handlers and the driver take mu; ABORT_POLL_MS
 * covers a skipped wake-up). */
static void wake_for_abort(void)
{
	if (pthread_mutex_trylock(&mu) != 0)
		return;
	if (running)
		wake_locked();
	pthread_mutex_unlock(&mu);
}

/* The child of fork() has no driver: it forgets the parent's (the jobs
 * are the parent's to finish) and closes its copies of the descriptors. */
static void at_child(void)
{
	pthread_mutex_init(&mu, NULL);
	if (ep >= 0)
		sfy_real()->close(ep);
	if (evfd >= 0)
		sfy_real()->close(evfd);
	ep = evfd = -1;
	running = false;
	incoming = NULL;
	jobs = NULL;
	for (unsigned i = 0; i < SFY_ASLOT_N; i++) {
		int f = atomic_exchange(&privfd[i], 0);
		if (f)
			sfy_real()->close(f - 1);
	}
}

static void setup_once(void)
{
	pthread_atfork(NULL, NULL, at_child);
	atomic_store(&sfy_aslot_abort_hook, wake_for_abort);
}

static int start_locked(void)
{
	ep = sfy_private_fd((int)sfy_real()->syscall(SYS_epoll_create1, EPOLL_CLOEXEC));
	evfd = sfy_private_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (ep < 0 || evfd < 0 || raw_epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &ev) < 0)
		goto fail;
	pthread_attr_t at;
	if (pthread_attr_init(&at) != 0)
		goto fail;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int r = sfy_thread_start(&t, &at, drive, NULL);
	pthread_attr_destroy(&at);
	if (r != 0)
		goto fail;
	running = true;
	return 0;
fail:
	if (ep >= 0)
		sfy_real()->close(ep);
	if (evfd >= 0)
		sfy_real()->close(evfd);
	ep = evfd = -1;
	return -1;
}

static bool submit(struct job *j)
{
	pthread_once(&atfork_once, setup_once);
	int e = errno;
	pthread_mutex_lock(&mu);
	bool ok = running || start_locked() == 0;
	if (ok) {
		j->next = incoming;
		incoming = j;
		wake_locked();
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return ok;
}

/* No driver to be had: the set-up finishes here, blocking (today's
 * behaviour for a non-blocking socket). 0 or -errno. */
static int run_here(struct sfy_chain_sm *sm, int fd, int r)
{
	while (r > 0) {
		if (r != SFY_SM_RUN) {
			int64_t left = sfy_chain_sm_deadline(sm) - sfy_now_ms();
			struct pollfd p = { .fd = fd,
					    .events = (short)((r & SFY_SM_IN ? POLLIN : 0) |
							      (r & SFY_SM_OUT ? POLLOUT : 0)) };
			if (left > 0)
				sfy_real()->poll(&p, 1, left > 60000 ? 60000 : (int)left);
		}
		r = sfy_chain_sm_step(sm);
	}
	return r;
}

/* ------------------------------------------------------------ connect */

/* Steps the caller's thread takes while the socket is ready at once: a
 * loopback hop connects (or refuses) inside connect() itself, so the
 * greeting goes out, or the refusal is connect()'s own answer, as the
 * kernel gives it for a direct connect that fails at once. */
#define EAGER_STEPS 3

static bool ready_now(int fd, int want)
{
	struct pollfd p = { .fd = fd, .events = (short)((want & SFY_SM_IN ? POLLIN : 0) |
							(want & SFY_SM_OUT ? POLLOUT : 0)) };
	int e = errno;
	bool r = sfy_real()->poll(&p, 1, 0) > 0;
	errno = e;
	return r;
}

int sfy_async_connect(const struct sfy_config *cfg, int fd, const struct sfy_addr *dst,
		      const struct sockaddr *peer, unsigned peer_len, const char *note)
{
	uint32_t gen;
	struct sfy_chain_sm *sm = sfy_chain_sm_new(cfg, fd, dst, SFY_S5_CONNECT, true);
	if (!sm)
		return 1;
	sfy_chain_sm_set_note(sm, note);
	/* The socket may still be replaced now, and only now. */
	int fit = sfy_chain_sm_fit(sm);
	if (fit < 0) {
		sfy_warn("connect failed: cannot open a socket of hop 1's address family: %s",
			 strerror(-fit));
		sfy_chain_sm_free(sm);
		return fit;
	}
	struct sfy_aslot *s = sfy_aslot_claim(fd, peer, peer_len, &gen);
	if (!s) {
		sfy_chain_sm_free(sm);
		return 1;
	}
	/* Whoever shares the socket gives up waiting after the chain's
	 * deadline and a margin, even if this process is gone by then. */
	sfy_aslot_set_expiry(s, gen, sfy_now_ms() + cfg->handshake_timeout_ms + 2000);
	struct job *j = calloc(1, sizeof(*j));
	if (!j || sfy_fdreg_pending_set(fd, s, gen) < 0) {
		sfy_chain_sm_free(sm);
		free(j);
		sfy_aslot_end(s, gen, ECANCELED, true);
		return 1;
	}
	/* Pending and hidden before the first byte moves: from here on no
	 * readiness, no program I/O reaches the socket. */
	sfy_fdreg_peer_set(fd, peer, (socklen_t)peer_len);
	sfy_ready_hide(fd);

	int r = sfy_chain_sm_step(sm);
	for (int k = 0; k < EAGER_STEPS && r > 0 && r != SFY_SM_RUN && ready_now(fd, r); k++)
		r = sfy_chain_sm_step(sm);
	int copy = -1;
	if (r > 0 && (copy = sfy_real()->fcntl(fd, F_DUPFD_CLOEXEC, SFY_PRIVATE_FD_MIN)) >= 0) {
		sfy_chain_sm_set_fd(sm, copy);
		j->sm = sm;
		j->cfg = cfg;
		j->pfd = fd;
		j->slot = s;
		j->gen = gen;
		j->fd = copy;
		j->want = r;
		atomic_store(&privfd[sfy_aslot_index(s)], copy + 1);
		if (submit(j))
			return -EINPROGRESS;
		atomic_store(&privfd[sfy_aslot_index(s)], 0);
		sfy_chain_sm_set_fd(sm, fd);
		sfy_real()->close(copy);
	}
	/* Ended at once, or no driver: the answer is connect()'s own. */
	r = run_here(sm, fd, r);
	if (r < 0)
		disconnect(fd);
	else
		note_proxied(fd, fd, cfg, sm, s);
	/* Up or failed already (loopback hops can answer, or refuse, within
	 * the eager steps): still EINPROGRESS, as the kernel says for every
	 * non-blocking TCP connect however fast. The socket is writable at
	 * the program's first look, with SO_ERROR 0 -- or the error, once,
	 * from the slot, which stays this fd's until it is collected. */
	sfy_aslot_end(s, gen, -r, false);
	if (r == 0)
		sfy_fdreg_pending_drop(fd, true);
	sfy_chain_sm_free(sm);
	free(j);
	return -EINPROGRESS;
}
