/* The real libc functions behind the interposers, bound once in the
 * library's constructor. dlsym(RTLD_NEXT) from this library finds the next
 * definition in load order: libc, or a sanitizer runtime's interceptor that
 * an instrumented program loads after us. Anything else there breaks the
 * library's promises, so each one is checked with dladdr():
 *
 * - another copy of this library (LD_PRELOAD naming two paths of it): its
 *   hooks would tunnel our connection to the proxy through the proxy again.
 *   A copy of the same build is skipped: we bind libc's definition
 *   ourselves, and the other copy, whose hooks nothing else reaches (every
 *   reference binds to the first definition, ours), stays idle.
 * - any other interposer of a call that can reach the network (connect,
 *   the sends, syscall, the resolvers), or another build of this library:
 *   we cannot know what it does with our calls, so the network fails
 *   closed (init.c logs the one line). An interposer that only sees reads,
 *   writes, closes or polls is left alone. */
#include <dlfcn.h>
#include <elf.h>
#include <gnu/lib-names.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dlreal.h"
#include "real.h"
#include "sfy.h"

/* A GNU build-id is a 20-byte SHA-1 by default; the linker allows more. */
#define BUILD_ID_MAX 64
/* One log line's worth: a function name and an object's path. */
#define WHY_MAX 512

static struct sfy_real real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static atomic_bool real_ready;
static char refusal[WHY_MAX];
static char other_copy[WHY_MAX];

#define E(field, sym) { offsetof(struct sfy_real, field), sym }
static const struct {
	size_t off;
	const char *sym;
} entries[] = {
	E(connect, "connect"), E(sendto, "sendto"), E(sendmsg, "sendmsg"),
	E(sendmmsg, "sendmmsg"), E(send, "send"), E(recv, "recv"),
	E(recvfrom, "recvfrom"), E(recvmsg, "recvmsg"), E(recvmmsg, "recvmmsg"),
	E(read, "read"), E(write, "write"), E(readv, "readv"), E(writev, "writev"),
	E(close, "close"), E(dup, "dup"), E(dup2, "dup2"), E(dup3, "dup3"),
	E(close_range, "close_range"), E(closefrom, "closefrom"), E(syscall, "syscall"),
	E(read_chk, "__read_chk"), E(recv_chk, "__recv_chk"),
	E(recvfrom_chk, "__recvfrom_chk"), E(poll, "poll"), E(ppoll, "ppoll"),
	E(poll_chk, "__poll_chk"), E(ppoll_chk, "__ppoll_chk"), E(select, "select"),
	E(pselect, "pselect"), E(epoll_create, "epoll_create"),
	E(epoll_create1, "epoll_create1"), E(epoll_ctl, "epoll_ctl"),
	E(fcntl, "fcntl"), E(fcntl64, "fcntl64"),
	E(getpeername, "getpeername"), E(getsockname, "getsockname"),
	E(bind, "bind"), E(listen, "listen"), E(accept, "accept"), E(accept4, "accept4"),
	E(getsockopt, "getsockopt"),
	E(shutdown, "shutdown"), E(getaddrinfo, "getaddrinfo"),
	E(freeaddrinfo, "freeaddrinfo"), E(getaddrinfo_a, "getaddrinfo_a"),
	E(gai_suspend, "gai_suspend"), E(gai_cancel, "gai_cancel"),
	E(getnameinfo, "getnameinfo"), E(gethostbyname, "gethostbyname"),
	E(gethostbyname2, "gethostbyname2"), E(gethostbyname_r, "gethostbyname_r"),
	E(gethostbyname2_r, "gethostbyname2_r"), E(gethostbyaddr, "gethostbyaddr"),
	E(gethostbyaddr_r, "gethostbyaddr_r"), E(res_query, "res_query"),
	E(res_search, "res_search"), E(res_querydomain, "res_querydomain"),
	E(res_send, "res_send"), E(res_nquery, "res_nquery"),
	E(res_nsearch, "res_nsearch"), E(res_nquerydomain, "res_nquerydomain"),
	E(res_nsend, "res_nsend"), E(execve, "execve"), E(execvpe, "execvpe"),
	E(fexecve, "fexecve"), E(execveat, "execveat"), E(posix_spawn, "posix_spawn"),
	E(posix_spawnp, "posix_spawnp"), E(system, "system"), E(popen, "popen"),
	E(pclose, "pclose"),
};
#undef E

/* Where glibc keeps these functions (before 2.34 some lived outside libc
 * proper), and the sanitizer runtimes whose interceptors may stand in. */
static const char *const trusted[] = {
	LIBC_SO, LIBPTHREAD_SO, LIBDL_SO, LIBRESOLV_SO, LIBANL_SO,
};
static const char *const sanitizer_prefixes[] = {
	"libasan.so", "libubsan.so", "libtsan.so", "liblsan.so", "libhwasan.so", "libclang_rt",
};

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool is_trusted(const char *path)
{
	const char *b = base_name(path);
	for (size_t i = 0; i < SFY_ARRAY_LEN(trusted); i++)
		if (strcmp(b, trusted[i]) == 0)
			return true;
	for (size_t i = 0; i < SFY_ARRAY_LEN(sanitizer_prefixes); i++)
		if (strncmp(b, sanitizer_prefixes[i], strlen(sanitizer_prefixes[i])) == 0)
			return true;
	return false;
}

struct id_query {
	const void *addr;
	unsigned char id[BUILD_ID_MAX];
	size_t len;
};

/* The NT_GNU_BUILD_ID note of the object whose segments hold q->addr. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct id_query *q = arg;
	uintptr_t a = (uintptr_t)q->addr;
	bool mine = false;
	for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		mine = ph->p_type == PT_LOAD && a >= lo && a - lo < ph->p_memsz;
	}
	if (!mine)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;
		while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
			size_t name = (n->n_namesz + 3) & ~(size_t)3;
			size_t desc = (n->n_descsz + 3) & ~(size_t)3;
			const char *d = p + sizeof(*n) + name;
			if (name + desc > (size_t)(end - p) - sizeof(*n))
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(p + sizeof(*n), "GNU", 4) == 0 && n->n_descsz <= BUILD_ID_MAX) {
				memcpy(q->id, d, n->n_descsz);
				q->len = n->n_descsz;
				return 1;
			}
			p = d + desc;
		}
	}
	return 1;
}

/* Whether the code at addr belongs to an object of the same build as this
 * one: a byte-identical copy loaded under another path. */
static bool same_build(const void *addr)
{
	struct id_query ours = { .addr = (const void *)same_build }, theirs = { .addr = addr };
	dl_iterate_phdr(find_build_id, &ours);
	dl_iterate_phdr(find_build_id, &theirs);
	return ours.len > 0 && ours.len == theirs.len && memcmp(ours.id, theirs.id, ours.len) == 0;
}

/* sym from libc itself (or the glibc library that holds it), NULL if none. */
static void *from_libc(const char *sym)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(trusted); i++) {
		void *h = dlopen(trusted[i], RTLD_LAZY | RTLD_NOLOAD);
		if (!h)
			continue;
		void *p = sfy_dl()->dlsym ? sfy_dl()->dlsym(h, sym) : NULL;
		dlclose(h);
		Dl_info di;
		if (p && dladdr(p, &di) && di.dli_fname && is_trusted(di.dli_fname))
			return p;
	}
	return NULL;
}

/* Can an interposer of sym put traffic on the network behind our back
 * (connect, sends, syscall, the resolvers)? One that only sees reads,
 * closes, dups or polls (a logging or I/O-accounting shim, fakeroot-style
 * tools) cannot, and is left alone. */
static bool sends(const char *sym)
{
	static const char *const harmless[] = {
		"recv", "recvfrom", "recvmsg", "recvmmsg", "read", "write", "readv", "writev",
		"close", "dup", "dup2", "dup3", "close_range", "closefrom", "__read_chk",
		"__recv_chk", "__recvfrom_chk", "poll", "ppoll", "getpeername", "getsockname",
		"freeaddrinfo", "gai_suspend", "gai_cancel",
		"__poll_chk", "__ppoll_chk", "select", "pselect", "epoll_create",
		"epoll_create1", "epoll_ctl",
		"fcntl", "fcntl64", "getsockopt", "shutdown",
		/* incoming connections: nothing leaves through these */
		"bind", "listen", "accept", "accept4",
		/* exec tracers (bear's libexec) see which programs run, and
		 * the guard has already fixed the environment they pass on. */
		"execve", "execvpe", "fexecve", "execveat", "posix_spawn", "posix_spawnp",
		"system", "popen", "pclose",
	};
	for (size_t i = 0; i < SFY_ARRAY_LEN(harmless); i++)
		if (!strcmp(sym, harmless[i]))
			return false;
	return true;
}

static void *bind_one(const char *sym)
{
	/* glibc's dlsym called from here: RTLD_NEXT is what comes after this
	 * library (our own dlsym hook is never involved, see dlreal.c). */
	void *p = sfy_dl()->dlsym ? sfy_dl()->dlsym(RTLD_NEXT, sym) : NULL;
	if (!p)
		return NULL;   /* this libc lacks it: the hook copes */
	Dl_info di;
	const char *where = dladdr(p, &di) && di.dli_fname ? di.dli_fname : "an unknown object";
	if (is_trusted(where))
		return p;
	if (same_build(p)) {
		if (!other_copy[0])
			snprintf(other_copy, sizeof(other_copy), "%s", where);
		return from_libc(sym);
	}
	if (!refusal[0] && sends(sym))
		snprintf(refusal, sizeof(refusal), "%s() resolves to %s, not libc", sym, where);
	return p;   /* still called for what is not network: close, read, ... */
}

static void real_load(void)
{
	for (size_t i = 0; i < SFY_ARRAY_LEN(entries); i++) {
		void *p = bind_one(entries[i].sym);
		memcpy((char *)&real + entries[i].off, &p, sizeof(p));
	}
	atomic_store_explicit(&real_ready, true, memory_order_release);
}

/* Early, before the program's main() and any thread it starts, so no hook
 * pays for the lookup and no lookup races a fork(). */
__attribute__((constructor)) static void real_init(void)
{
	pthread_once(&real_once, real_load);
}

const struct sfy_real *sfy_real(void)
{
	if (!atomic_load_explicit(&real_ready, memory_order_acquire))
		pthread_once(&real_once, real_load);
	return &real;
}

bool sfy_real_is_glibc(const void *addr)
{
	Dl_info di;
	return addr && dladdr(addr, &di) && di.dli_fname && is_trusted(di.dli_fname);
}

bool sfy_real_same_build(const void *addr)
{
	return addr && same_build(addr);
}

const char *sfy_real_refusal(void)
{
	sfy_real();
	return refusal[0] ? refusal : NULL;
}

const char *sfy_real_other_copy(void)
{
	sfy_real();
	return other_copy[0] ? other_copy : NULL;
}
