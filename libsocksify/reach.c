/* Would the dynamic loader preload libsocksify.so into this program, and
 * would the preload then see its connects? If not, its traffic would
 * silently bypass the proxy, so the launcher and the exec guard refuse it:
 *  - a statically linked ELF has no loader at all (no PT_INTERP);
 *  - a set-user/group-ID program switching to another id runs in the
 *    loader's secure-execution mode (AT_SECURE), which drops LD_PRELOAD
 *    entries containing '/';
 *  - file capabilities also set AT_SECURE for an unprivileged user;
 *  - a Go program, even dynamically linked (cgo), makes its own system
 *    calls: the preload is loaded but never sees a connect;
 *  - an ELF of another class, byte order or machine (i386 multiarch, a
 *    qemu-binfmt program), or one whose ELF interpreter is not our loader:
 *    the loader says "cannot be preloaded ... ignored" and runs it bare.
 * Anything we cannot read or parse is left for execve() to judge.
 *
 * Runs on the exec path of vfork() children: stack buffers and plain
 * system calls only (no malloc, no stdio, no locks). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "reach.h"
#include "real.h"

/* Linux's binfmt_elf refuses a program header table larger than this, so a
 * bigger one is not a program we could preload into anyway. */
#define SFY_PHDRS_MAX 65536
/* The kernel reads "#!" lines only this far (BINPRM_BUF_SIZE). */
#define SFY_SHEBANG_MAX 256
/* One read covers the ELF header, the program headers, PT_INTERP and the
 * notes of every ordinary executable; what lies further is read apart. */
#define HEAD_MAX 4096
/* Go's ELF note: name "Go", type ELF_NOTE_GOBUILDID_TAG
 * (cmd/link/internal/ld/elf.go). */
#define GO_NOTE_TYPE 4
/* The section Go's linker writes the build information into; it starts
 * with "\xff Go buildinf:" and survives strip. */
#define GO_BUILDINFO ".go.buildinfo"
/* Section headers are scanned this many at a time (64 bytes each). */
#define SHDR_CHUNK 32

static struct {
	bool ready;
	unsigned char cls, data;
	unsigned machine;
	char loader[PATH_MAX];          /* "" if unknown */
	dev_t dev;
	ino_t ino;
} self;

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	do
		n = pread(fd, buf, len, off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ENOEXEC;
}

static void close_fd(int fd)
{
	int saved = errno;
	sfy_real()->close(fd);
	errno = saved;
}

/* Integers in the file's own byte order (EI_DATA), whatever ours is. */
static uint64_t get_uint(const unsigned char *p, size_t size, int big)
{
	uint64_t v = 0;

	for (size_t i = 0; i < size; i++)
		v |= (uint64_t)p[big ? i : size - 1 - i] << (8 * (size - 1 - i));
	return v;
}

/* ------------------------------------------------------------ ourselves */

static int self_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t a = (uintptr_t)arg;
	bool mine = false;
	const unsigned char *eh = NULL;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_offset == 0)
			eh = (const unsigned char *)lo;
		mine |= a >= lo && a - lo < ph->p_memsz;
	}
	if (!mine || !eh || memcmp(eh, ELFMAG, SELFMAG))
		return 0;
	self.cls = eh[EI_CLASS];
	self.data = eh[EI_DATA];
	self.machine = (unsigned)get_uint(eh + offsetof(ElfW(Ehdr), e_machine), 2,
					  self.data == ELFDATA2MSB);
	return 1;
}

/* The first object dl_iterate_phdr reports is the main program; its
 * PT_INTERP names the loader that runs this process (and loaded us). */
static int main_loader(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_INTERP && ph->p_filesz < PATH_MAX) {
			memcpy(self.loader, (const char *)(info->dlpi_addr + ph->p_vaddr),
			       ph->p_filesz);
			self.loader[ph->p_filesz] = '\0';
		}
	}
	return 1;
}

void sfy_reach_init(void)
{
	struct stat st;

	if (self.ready)
		return;
	if (dl_iterate_phdr(self_object, (void *)(uintptr_t)sfy_reach_init) != 1)
		return;
	dl_iterate_phdr(main_loader, NULL);
	if (self.loader[0] && stat(self.loader, &st) == 0) {
		self.dev = st.st_dev;
		self.ino = st.st_ino;
	} else {
		self.loader[0] = '\0';
	}
	self.ready = true;
}

/* ------------------------------------------------------------ ELF */

struct elf {
	int fd, big, native;
	unsigned cls;
	const unsigned char *head;      /* the first hlen bytes of the file */
	size_t hlen;
};

/* len bytes at off, from the head buffer if it holds them, else read into
 * tmp. NULL if the file is shorter. */
static const unsigned char *bytes_at(const struct elf *e, uint64_t off, size_t len,
				     unsigned char *tmp)
{
	if (off <= e->hlen && len <= e->hlen - off)
		return e->head + off;
	if (off > INT64_MAX - len || read_at(e->fd, tmp, len, (off_t)off) < 0)
		return NULL;
	return tmp;
}

static bool is_go_note(const struct elf *e, uint64_t off, uint64_t size)
{
	unsigned char tmp[HEAD_MAX];
	const unsigned char *p;

	if (size > sizeof tmp)
		size = sizeof tmp;      /* Go's note comes first or not at all */
	if (!(p = bytes_at(e, off, (size_t)size, tmp)))
		return false;
	for (uint64_t o = 0; size - o >= 12;) {
		uint64_t nsz = get_uint(p + o, 4, e->big), dsz = get_uint(p + o + 4, 4, e->big);
		uint64_t type = get_uint(p + o + 8, 4, e->big);
		uint64_t name = (nsz + 3) & ~3ull, desc = (dsz + 3) & ~3ull;
		if (name > size - o - 12 || desc > size - o - 12 - name)
			break;
		if (nsz == 3 && type == GO_NOTE_TYPE && !memcmp(p + o + 12, "Go", 3))
			return true;
		o += 12 + name + desc;
	}
	return false;
}

/* A section named .go.buildinfo: found through the section headers (at
 * the end of the file) and the section-name table. */
static bool has_go_section(const struct elf *e)
{
	bool e64 = e->cls == ELFCLASS64;
	size_t shent = e64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	size_t osz = e64 ? 8 : 4;
	/* sh_name u32 @0, sh_offset @24|16, sh_size @32|20 */
	size_t o_off = e64 ? 24 : 16, o_size = e64 ? 32 : 20;
	const unsigned char *h = e->head;
	uint64_t shoff = get_uint(h + (e64 ? 40 : 32), osz, e->big);
	uint64_t entsz = get_uint(h + (e64 ? 58 : 46), 2, e->big);
	uint64_t shnum = get_uint(h + (e64 ? 60 : 48), 2, e->big);
	uint64_t strndx = get_uint(h + (e64 ? 62 : 50), 2, e->big);
	unsigned char shdrs[SHDR_CHUNK * sizeof(Elf64_Shdr)], strtab[HEAD_MAX];
	char name[sizeof GO_BUILDINFO];
	const unsigned char *s;
	uint64_t stroff, strsz;

	if (!shoff || entsz != shent || !shnum || strndx >= shnum ||
	    shoff > INT64_MAX - shnum * shent)
		return false;
	if (!(s = bytes_at(e, shoff + strndx * shent, shent, shdrs)))
		return false;
	stroff = get_uint(s + o_off, osz, e->big);
	strsz = get_uint(s + o_size, osz, e->big);
	if (strsz > sizeof strtab || read_at(e->fd, strtab, (size_t)strsz, (off_t)stroff) < 0)
		strsz = 0;      /* large: each name read on its own */
	for (uint64_t i = 0; i < shnum; i += SHDR_CHUNK) {
		uint64_t n = shnum - i < SHDR_CHUNK ? shnum - i : SHDR_CHUNK;
		if (read_at(e->fd, shdrs, (size_t)(n * shent), (off_t)(shoff + i * shent)) < 0)
			return false;
		for (uint64_t k = 0; k < n; k++) {
			uint64_t at = get_uint(shdrs + k * shent, 4, e->big);
			if (strsz) {
				if (at < strsz && strsz - at >= sizeof name &&
				    !memcmp(strtab + at, GO_BUILDINFO, sizeof name))
					return true;
			} else if (at <= INT64_MAX - stroff &&
				   read_at(e->fd, name, sizeof name, (off_t)(stroff + at)) == 0 &&
				   !memcmp(name, GO_BUILDINFO, sizeof name)) {
				return true;
			}
		}
	}
	return false;
}

/*  e_ident[16] | e_type u16 | e_machine u16 | ... e_phoff | ... e_phentsize
 *  u16 | e_phnum u16; e_phoff is u32 at 28 (ELFCLASS32) or u64 at 32
 *  (ELFCLASS64); a program header is p_type u32, then p_offset (u32 @4 or
 *  u64 @8) and p_filesz (u32 @16 or u64 @32). */
static enum sfy_reach elf_check(int fd, const unsigned char *head, size_t hlen)
{
	struct elf e = { .fd = fd, .head = head, .hlen = hlen };
	bool e64;
	size_t ehsize, phsize, osz;
	uint64_t type, machine, phoff, phent, phnum, ioff = 0, isz = 0;
	bool interp = false, go = false;
	char path[PATH_MAX];

	if (hlen < EI_NIDENT || (head[EI_DATA] != ELFDATA2LSB && head[EI_DATA] != ELFDATA2MSB))
		return SFY_REACH_OK;
	e.big = head[EI_DATA] == ELFDATA2MSB;
	e.cls = head[EI_CLASS];
	if (e.cls != ELFCLASS64 && e.cls != ELFCLASS32)
		return SFY_REACH_OK;
	e64 = e.cls == ELFCLASS64;
	ehsize = e64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	phsize = e64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	osz = e64 ? 8 : 4;
	if (hlen < ehsize)
		return SFY_REACH_OK;
	/* e_type and e_machine sit at the same offsets in both classes. */
	type = get_uint(head + offsetof(Elf64_Ehdr, e_type), 2, e.big);
	machine = get_uint(head + offsetof(Elf64_Ehdr, e_machine), 2, e.big);
	if (type != ET_EXEC && type != ET_DYN)
		return SFY_REACH_OK;
	phoff = get_uint(head + (e64 ? 32 : 28), osz, e.big);
	phent = get_uint(head + (e64 ? 54 : 42), 2, e.big);
	phnum = get_uint(head + (e64 ? 56 : 44), 2, e.big);
	if (phent != phsize || phnum == 0 || phnum * phent > SFY_PHDRS_MAX ||
	    phoff > INT64_MAX - SFY_PHDRS_MAX)
		return SFY_REACH_OK;
	e.native = self.ready && e.cls == self.cls && head[EI_DATA] == self.data &&
		   machine == self.machine;
	for (uint64_t i = 0; i < phnum; i++) {
		unsigned char tmp[sizeof(Elf64_Phdr)];
		const unsigned char *ph = bytes_at(&e, phoff + i * phent, phsize, tmp);
		uint64_t pt, off, sz;
		if (!ph)
			return SFY_REACH_OK;
		pt = get_uint(ph, 4, e.big);
		off = get_uint(ph + (e64 ? 8 : 4), osz, e.big);
		sz = get_uint(ph + (e64 ? 32 : 16), osz, e.big);
		if (pt == PT_INTERP) {
			interp = true;
			ioff = off;
			isz = sz;
		} else if (pt == PT_NOTE && e.native && !go) {
			go = is_go_note(&e, off, sz);
		}
	}
	if (!interp)
		return SFY_REACH_STATIC;
	if (!self.ready)
		return SFY_REACH_OK;
	if (!e.native)
		return SFY_REACH_FOREIGN;
	if (self.loader[0] && isz > 0 && isz < sizeof path &&
	    read_at(fd, path, (size_t)isz, (off_t)ioff) == 0) {
		struct stat st;
		path[isz] = '\0';
		if (strcmp(path, self.loader) &&
		    (stat(path, &st) < 0 || st.st_dev != self.dev || st.st_ino != self.ino))
			return SFY_REACH_FOREIGN;
	}
	if (go || has_go_section(&e))
		return SFY_REACH_GO;
	return SFY_REACH_OK;
}

int sfy_is_elf(int fd)
{
	unsigned char magic[SELFMAG];

	return read_at(fd, magic, sizeof magic, 0) == 0 &&
	       memcmp(magic, ELFMAG, SELFMAG) == 0;
}

/* ------------------------------------------------------------ files */

/* On a nosuid mount the kernel ignores set-ID bits and file capabilities,
 * so the program runs unprivileged and the loader honours LD_PRELOAD. */
static bool nosuid_mount(int fd, const char *path)
{
	struct statvfs sv;

	return (path ? statvfs(path, &sv) : fstatvfs(fd, &sv)) == 0 && (sv.f_flag & ST_NOSUID);
}

static bool setid_switches(const struct stat *st)
{
	if ((st->st_mode & S_ISUID) && st->st_uid != getuid())
		return true;
	/* Without group-execute the set-group-ID bit means mandatory locking,
	 * not a gid change. */
	return (st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	       st->st_gid != getgid();
}

/* The privilege checks, on path (fd < 0) or fd. */
static enum sfy_reach privileges(int fd, const char *path, const struct stat *st)
{
	if (setid_switches(st) && !nosuid_mount(fd, path))
		return SFY_REACH_SETID;
	/* Root gains nothing from file capabilities, so no secure mode; for
	 * anyone else any capability set counts (documented in socksify(1)). */
	if (getuid() != 0 &&
	    (path ? getxattr(path, "security.capability", NULL, 0)
		  : fgetxattr(fd, "security.capability", NULL, 0)) >= 0 &&
	    !nosuid_mount(fd, path))
		return SFY_REACH_FILECAPS;
	return SFY_REACH_OK;
}

/* "#! /path/to/interp [arg]" -> interp; false if head is no such line. */
static bool shebang(const unsigned char *head, size_t n, char interp[static PATH_MAX])
{
	size_t i = 2, len;

	if (n < 2 || head[0] != '#' || head[1] != '!')
		return false;
	if (n > SFY_SHEBANG_MAX)
		n = SFY_SHEBANG_MAX;
	while (i < n && (head[i] == ' ' || head[i] == '\t'))
		i++;
	for (len = 0; i + len < n && head[i + len] != ' ' && head[i + len] != '\t' &&
		      head[i + len] != '\n' && head[i + len] != '\0'; len++)
		;
	if (len == 0 || len >= PATH_MAX)
		return false;
	memcpy(interp, head + i, len);
	interp[len] = '\0';
	return true;
}

static bool is_script(int fd)
{
	char two[2];

	return read_at(fd, two, sizeof two, 0) == 0 && two[0] == '#' && two[1] == '!';
}

static int open_ro(const char *path)
{
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	while (fd < 0 && errno == EINTR);
	return fd;
}

/* The content checks of an open file; depth 0 follows one "#!". */
static void content(int fd, struct sfy_reach_result *r, int depth)
{
	unsigned char head[HEAD_MAX];
	ssize_t n;

	do
		n = pread(fd, head, sizeof head, 0);
	while (n < 0 && errno == EINTR);
	if (n < 4)
		return;
	if (!memcmp(head, ELFMAG, SELFMAG)) {
		r->why = elf_check(fd, head, (size_t)n);
		return;
	}
	if (depth == 0 && shebang(head, (size_t)n, r->interp)) {
		struct stat st;
		int ifd;
		if (stat(r->interp, &st) < 0 || !S_ISREG(st.st_mode))
			return;
		r->why = privileges(-1, r->interp, &st);
		if (r->why == SFY_REACH_OK && (ifd = open_ro(r->interp)) >= 0) {
			content(ifd, r, 1);
			close_fd(ifd);
		}
		r->by_interp = r->why != SFY_REACH_OK;
	}
}

/* The file at path (st its stat): the kernel ignores a script's own set-ID
 * bits, its interpreter's count (content() checks them); an unreadable
 * file is judged by its mode bits alone. */
static void judge_path(const char *path, const struct stat *st, struct sfy_reach_result *r)
{
	int fd = open_ro(path);
	if (fd < 0 || !is_script(fd))
		r->why = privileges(-1, path, st);
	if (fd >= 0) {
		if (r->why == SFY_REACH_OK)
			content(fd, r, 0);
		close_fd(fd);
	}
}

void sfy_reach_check(const char *path, struct sfy_reach_result *r)
{
	struct stat st;
	int saved = errno;

	r->why = SFY_REACH_OK;
	r->by_interp = false;
	r->interp[0] = '\0';
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		errno = saved;
		return;
	}
	judge_path(path, &st, r);
	errno = saved;
}

/* "/proc/self/fd/N" without printf. */
static void proc_fd_path(int fd, char out[static 32])
{
	char digits[12];
	size_t n = 0, o = sizeof "/proc/self/fd/" - 1;

	memcpy(out, "/proc/self/fd/", o);
	do
		digits[n++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0 && n < sizeof digits);
	while (n)
		out[o++] = digits[--n];
	out[o] = '\0';
}

void sfy_reach_check_fd(int fd, struct sfy_reach_result *r)
{
	struct stat st;
	int saved = errno, flags;

	r->why = SFY_REACH_OK;
	r->by_interp = false;
	r->interp[0] = '\0';
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	flags = sfy_real()->fcntl(fd, F_GETFL);
	if (flags >= 0 && (flags & O_PATH)) {
		char p[32];
		proc_fd_path(fd, p);
		judge_path(p, &st, r);
		goto out;
	}
	if (is_script(fd) || (r->why = privileges(fd, NULL, &st)) == SFY_REACH_OK)
		content(fd, r, 0);
out:
	errno = saved;
}

const char *sfy_reach_reason(enum sfy_reach why)
{
	switch (why) {
	case SFY_REACH_OK:
		return "can be proxied";
	case SFY_REACH_STATIC:
		return "statically linked: LD_PRELOAD cannot reach it";
	case SFY_REACH_SETID:
		return "set-user-ID/set-group-ID program: the loader ignores LD_PRELOAD "
		       "for it (secure-execution mode)";
	case SFY_REACH_FILECAPS:
		return "has file capabilities: the loader ignores LD_PRELOAD for it "
		       "(secure-execution mode)";
	case SFY_REACH_GO:
		return "a Go program: it makes its own system calls, LD_PRELOAD never "
		       "sees its connections";
	case SFY_REACH_FOREIGN:
		return "built for another architecture or loader: the loader cannot "
		       "preload socksify into it";
	}
	return "?";
}
