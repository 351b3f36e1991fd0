/* Would the dynamic loader preload libsocksify.so into this program? If
 * not, its traffic would silently bypass the proxy, so the launcher refuses
 * to run it. Three cases:
 *  - a statically linked ELF has no loader at all (no PT_INTERP);
 *  - a set-user/group-ID program switching to another id runs in the
 *    loader's secure-execution mode (AT_SECURE), which drops LD_PRELOAD
 *    entries containing '/';
 *  - file capabilities also set AT_SECURE for an unprivileged user.
 * Anything we cannot read or parse is left for execve() to judge. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "launcher.h"

/* Linux's binfmt_elf refuses a program header table larger than this, so a
 * bigger one is not a program we could preload into anyway. */
#define SFY_PHDRS_MAX 65536
/* The kernel reads "#!" lines only this far (BINPRM_BUF_SIZE). */
#define SFY_SHEBANG_MAX 256

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

/* Integers in the file's own byte order (EI_DATA), whatever ours is. */
static uint64_t get_uint(const unsigned char *p, size_t size, int big)
{
	uint64_t v = 0;

	for (size_t i = 0; i < size; i++)
		v |= (uint64_t)p[big ? i : size - 1 - i] << (8 * (size - 1 - i));
	return v;
}

int sfy_is_elf(int fd)
{
	unsigned char magic[SELFMAG];

	return read_at(fd, magic, sizeof magic, 0) == 0 &&
	       memcmp(magic, ELFMAG, SELFMAG) == 0;
}

/*  e_ident[16] | e_type u16 | ... e_phoff | ... e_phentsize u16 | e_phnum u16
 *  e_phoff is u32 at 28 (ELFCLASS32) or u64 at 32 (ELFCLASS64); each
 *  program header starts with p_type u32. */
int sfy_elf_is_static(int fd)
{
	unsigned char eh[sizeof(Elf64_Ehdr)];
	size_t ehsize, phentsize_want, offsz, off_phoff, off_phent, off_phnum;
	uint64_t phoff, phentsize, phnum, type;
	int big, r;

	if (read_at(fd, eh, EI_NIDENT, 0) < 0 || memcmp(eh, ELFMAG, SELFMAG))
		return 0;
	if (eh[EI_DATA] != ELFDATA2LSB && eh[EI_DATA] != ELFDATA2MSB)
		return 0;
	big = eh[EI_DATA] == ELFDATA2MSB;
	if (eh[EI_CLASS] == ELFCLASS64) {
		ehsize = sizeof(Elf64_Ehdr);
		phentsize_want = sizeof(Elf64_Phdr);
		offsz = sizeof(Elf64_Off);
		off_phoff = offsetof(Elf64_Ehdr, e_phoff);
		off_phent = offsetof(Elf64_Ehdr, e_phentsize);
		off_phnum = offsetof(Elf64_Ehdr, e_phnum);
	} else if (eh[EI_CLASS] == ELFCLASS32) {
		ehsize = sizeof(Elf32_Ehdr);
		phentsize_want = sizeof(Elf32_Phdr);
		offsz = sizeof(Elf32_Off);
		off_phoff = offsetof(Elf32_Ehdr, e_phoff);
		off_phent = offsetof(Elf32_Ehdr, e_phentsize);
		off_phnum = offsetof(Elf32_Ehdr, e_phnum);
	} else {
		return 0;
	}
	r = read_at(fd, eh, ehsize, 0);
	if (r < 0)
		return r == -ENOEXEC ? 0 : r;
	/* e_type sits at the same offset in both classes. */
	type = get_uint(eh + offsetof(Elf64_Ehdr, e_type), sizeof(Elf64_Half), big);
	if (type != ET_EXEC && type != ET_DYN)
		return 0;
	phoff = get_uint(eh + off_phoff, offsz, big);
	phentsize = get_uint(eh + off_phent, sizeof(Elf64_Half), big);
	phnum = get_uint(eh + off_phnum, sizeof(Elf64_Half), big);
	if (phentsize != phentsize_want || phnum == 0 ||
	    phnum * phentsize > SFY_PHDRS_MAX || phoff > INT64_MAX - SFY_PHDRS_MAX)
		return 0;
	for (uint64_t i = 0; i < phnum; i++) {
		unsigned char pt[sizeof(Elf64_Word)];

		r = read_at(fd, pt, sizeof pt, (off_t)(phoff + i * phentsize));
		if (r < 0)
			return r == -ENOEXEC ? 0 : r;
		if (get_uint(pt, sizeof pt, big) == PT_INTERP)
			return 0;
	}
	return 1;
}

/* "#! /path/to/interp [arg]" -> interp; 0 if fd is no such script. */
static int shebang(int fd, char interp[static PATH_MAX])
{
	char line[SFY_SHEBANG_MAX + 1];
	ssize_t n;
	size_t i = 2, len;

	do
		n = pread(fd, line, SFY_SHEBANG_MAX, 0);
	while (n < 0 && errno == EINTR);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	while (line[i] == ' ' || line[i] == '\t')
		i++;
	len = strcspn(line + i, " \t\n");
	if (len == 0 || len >= PATH_MAX)
		return 0;
	memcpy(interp, line + i, len);
	interp[len] = '\0';
	return 1;
}

static int file_is_static(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return 0;
	r = sfy_elf_is_static(fd);
	close(fd);
	return r == 1;
}

/* On a nosuid mount the kernel ignores set-ID bits and file capabilities,
 * so the program runs unprivileged and the loader honours LD_PRELOAD. */
static int nosuid_mount(const char *path)
{
	struct statvfs sv;

	return statvfs(path, &sv) == 0 && (sv.f_flag & ST_NOSUID);
}

static int setid_switches(const struct stat *st)
{
	if ((st->st_mode & S_ISUID) && st->st_uid != getuid())
		return 1;
	/* Without group-execute the set-group-ID bit means mandatory locking,
	 * not a gid change. */
	if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	    st->st_gid != getgid())
		return 1;
	return 0;
}

enum sfy_reach sfy_reach_check(const char *path, char interp[static PATH_MAX])
{
	struct stat st;
	int fd, r, script;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return SFY_REACH_OK;
	if (setid_switches(&st) && !nosuid_mount(path))
		return SFY_REACH_SETID;
	/* Root gains nothing from file capabilities, so no secure mode; for
	 * anyone else any capability set counts (documented in socksify(1)). */
	if (getuid() != 0 && getxattr(path, "security.capability", NULL, 0) >= 0 &&
	    !nosuid_mount(path))
		return SFY_REACH_FILECAPS;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return SFY_REACH_OK;
	r = sfy_elf_is_static(fd);
	script = r == 0 && shebang(fd, interp);
	close(fd);
	if (r == 1)
		return SFY_REACH_STATIC;
	/* One level only: an interpreter that is itself a script is rare. */
	if (script && file_is_static(interp))
		return SFY_REACH_STATIC_INTERP;
	return SFY_REACH_OK;
}
