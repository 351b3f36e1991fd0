/* glibc's dlsym()/dlvsym() without calling dlsym: this library exports both
 * (hooks_dl.c), so every call by name from inside it binds to our own hook,
 * and glibc 2.34 stopped exporting the internal _dl_sym() that such hooks
 * used to call. What is left is reading libc's dynamic symbol table in
 * memory, as the dynamic linker does: the object from the r_debug list,
 * its DT_SYMTAB/DT_STRTAB/DT_VERSYM and the GNU (or SysV) hash table, and
 * the symbol's default version (dlsym@@GLIBC_2.34, not the compat
 * dlsym@GLIBC_2.2.5). The same lookup over our own table says which names
 * this library interposes, so hooks_dl.c's name -> hook map is the export
 * list itself and cannot drift from it.
 *
 * This runs the first time any library calls dlsym: a sanitizer runtime
 * does during its own start-up, before our constructor and before its
 * interceptors work. So nothing here calls a function another library might
 * intercept (no strcmp, no dl_iterate_phdr) except glibc's dlsym itself,
 * and sanitizer instrumentation is off for the lookup. */
#include <dlfcn.h>
#include <elf.h>
#include <gnu/lib-names.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dlreal.h"
#include "sfy.h"

#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

/* Our own dynamic section (the linker's name for it). */
extern ElfW(Dyn) _DYNAMIC[] __attribute__((visibility("hidden")));

/* The pointers the dlsym/dlvsym entry stubs of hooks_dl.c jump through
 * for RTLD_NEXT and RTLD_DEFAULT: [0] dlsym, [1] dlvsym. */
void *sfy_dl_fwd[2];

static struct sfy_dl dl;
static pthread_once_t dl_once = PTHREAD_ONCE_INIT;
static atomic_bool dl_ready;

struct dyn {
	ElfW(Addr) base;
	const ElfW(Sym) *sym;
	const char *str;
	const uint32_t *gnu;            /* DT_GNU_HASH */
	const ElfW(Word) *sysv;         /* DT_HASH */
	const ElfW(Half) *versym;       /* NULL: no versions */
};

NO_SANITIZE static bool same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

NO_SANITIZE static const char *base_name(const char *p)
{
	const char *b = p;
	for (; *p; p++)
		if (*p == '/')
			b = p + 1;
	return b;
}

/* The dynamic linker relocates these entries in place on most targets; on
 * those whose .dynamic is read-only they stay offsets from the base. */
NO_SANITIZE static const void *dyn_ptr(ElfW(Addr) base, ElfW(Addr) v)
{
	return (const void *)(v >= base ? v : v + base);
}

NO_SANITIZE static bool dyn_read(const struct link_map *lm, struct dyn *d)
{
	*d = (struct dyn){ .base = lm->l_addr };
	for (const ElfW(Dyn) *e = lm->l_ld; e && e->d_tag != DT_NULL; e++) {
		const void *p = dyn_ptr(lm->l_addr, e->d_un.d_ptr);
		switch (e->d_tag) {
		case DT_SYMTAB: d->sym = p; break;
		case DT_STRTAB: d->str = p; break;
		case DT_GNU_HASH: d->gnu = p; break;
		case DT_HASH: d->sysv = p; break;
		case DT_VERSYM: d->versym = p; break;
		default: break;
		}
	}
	return d->sym && d->str && (d->gnu || d->sysv);
}

/* A defined function under name, in its default version: what dlsym()
 * on the object returns. Hidden (compat) versions and IFUNC resolvers are
 * not answers. (The ELF64_ST_* macros are those of both classes.) */
NO_SANITIZE static void *match(const struct dyn *d, uint32_t i, const char *name)
{
	const ElfW(Sym) *s = &d->sym[i];
	if (s->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(s->st_info) != STT_FUNC ||
	    (ELF64_ST_BIND(s->st_info) != STB_GLOBAL && ELF64_ST_BIND(s->st_info) != STB_WEAK))
		return NULL;
	if (d->versym && ((d->versym[i] & 0x8000) || (d->versym[i] & 0x7fff) == VER_NDX_LOCAL))
		return NULL;
	return same(d->str + s->st_name, name) ? (void *)(d->base + s->st_value) : NULL;
}

NO_SANITIZE static void *lookup(const struct dyn *d, const char *name)
{
	if (d->gnu) {
		/* nbuckets, symoffset, bloom words, bloom shift; bloom; buckets;
		 * chain (hash values, low bit = last of its bucket). */
		uint32_t nb = d->gnu[0], off = d->gnu[1], nbloom = d->gnu[2];
		const uint32_t *buckets = d->gnu + 4 + nbloom * (sizeof(ElfW(Addr)) / 4);
		const uint32_t *chain = buckets + nb;
		uint32_t h = 5381;
		for (const unsigned char *c = (const unsigned char *)name; *c; c++)
			h = h * 33 + *c;
		if (nb == 0)
			return NULL;
		uint32_t i = buckets[h % nb];
		if (i < off)
			return NULL;
		for (;; i++) {
			uint32_t ch = chain[i - off];
			void *p = (ch | 1) == (h | 1) ? match(d, i, name) : NULL;
			if (p)
				return p;
			if (ch & 1)
				return NULL;
		}
	}
	/* nbucket, nchain; buckets; chain (symbol indexes). */
	uint32_t nb = d->sysv[0], nchain = d->sysv[1], h = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
		h = (h << 4) + *c;
		uint32_t g = h & 0xf0000000u;
		h ^= g >> 24;
		h &= ~g;
	}
	if (nb == 0)
		return NULL;
	for (uint32_t i = d->sysv[2 + h % nb], n = 0; i != STN_UNDEF && i < nchain && n < nchain;
	     i = d->sysv[2 + nb + i], n++) {
		void *p = match(d, i, name);
		if (p)
			return p;
	}
	return NULL;
}

NO_SANITIZE static const struct link_map *map_named(const char *soname)
{
	for (const struct link_map *lm = _r_debug.r_map; lm; lm = lm->l_next)
		if (lm->l_name && same(base_name(lm->l_name), soname))
			return lm;
	return NULL;
}

/* name from libc (since glibc 2.34) or libdl (before). */
NO_SANITIZE static void *from_glibc(const char *name)
{
	static const char *const where[] = { LIBC_SO, LIBDL_SO };
	for (size_t i = 0; i < SFY_ARRAY_LEN(where); i++) {
		const struct link_map *lm = map_named(where[i]);
		struct dyn d;
		void *p = lm && dyn_read(lm, &d) ? lookup(&d, name) : NULL;
		if (p)
			return p;
	}
	return NULL;
}

NO_SANITIZE static void dl_load(void)
{
	dl.dlsym = (sfy_dlsym_fn)from_glibc("dlsym");
	dl.dlvsym = (sfy_dlvsym_fn)from_glibc("dlvsym");
	/* Called from this library, RTLD_NEXT means the definition after us. */
	dl.next_dlsym = dl.dlsym ? (sfy_dlsym_fn)dl.dlsym(RTLD_NEXT, "dlsym") : NULL;
	dl.next_dlvsym = dl.dlsym ? (sfy_dlvsym_fn)dl.dlsym(RTLD_NEXT, "dlvsym") : NULL;
	if (!dl.next_dlsym)
		dl.next_dlsym = dl.dlsym;
	if (!dl.next_dlvsym)
		dl.next_dlvsym = dl.dlvsym;
	__atomic_store_n(&sfy_dl_fwd[0], (void *)dl.next_dlsym, __ATOMIC_RELEASE);
	__atomic_store_n(&sfy_dl_fwd[1], (void *)dl.next_dlvsym, __ATOMIC_RELEASE);
	atomic_store_explicit(&dl_ready, true, memory_order_release);
}

NO_SANITIZE const struct sfy_dl *sfy_dl(void)
{
	if (!atomic_load_explicit(&dl_ready, memory_order_acquire))
		pthread_once(&dl_once, dl_load);
	return &dl;
}

NO_SANITIZE void *sfy_dl_own(const char *name)
{
	static const struct link_map *self;
	const struct link_map *lm = __atomic_load_n(&self, __ATOMIC_ACQUIRE);
	if (!lm) {
		for (lm = _r_debug.r_map; lm && lm->l_ld != _DYNAMIC; lm = lm->l_next)
			;
		if (!lm)
			return NULL;
		__atomic_store_n(&self, lm, __ATOMIC_RELEASE);
	}
	struct dyn d;
	return dyn_read(lm, &d) ? lookup(&d, name) : NULL;
}

void *sfy_dl_default_in(const void *addr, const char *name)
{
	Dl_info di;
	struct link_map *lm = NULL;
	struct dyn d;
	if (!dladdr1(addr, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !dyn_read(lm, &d))
		return NULL;
	return lookup(&d, name);
}
