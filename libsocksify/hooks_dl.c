/* dlsym() and dlvsym(): a lookup through an explicit handle
 * (dlsym(dlopen("libc.so.6"), "connect"), Python's
 * ctypes.CDLL("libc.so.6").connect) finds libc's definition, not the
 * interposer a plain call binds to, and would go out directly. When such a
 * lookup finds glibc's definition of a name this library exports, it gets
 * our hook instead. The names are this library's own exports, read from
 * its dynamic symbol table (dlreal.c), so the map is the export list.
 *
 * RTLD_NEXT and RTLD_DEFAULT lookups must not change at all, and glibc
 * answers them relative to the calling object, which it finds from
 * dlsym's return address: a hook that calls glibc's dlsym would make
 * every RTLD_NEXT "next after socksify" (a wrapper library loaded after us
 * would find itself, and recurse). glibc >= 2.34 no longer exports
 * _dl_sym(), the entry that takes the caller as an argument; emulating
 * RTLD_NEXT means re-implementing the dynamic linker's scope walk
 * (versions, RTLD_LOCAL groups, DEEPBIND). So the entry points are a few
 * instructions of assembly: for those two handles they jump, not call, to
 * the next dlsym (glibc's, or another preloaded interposer's), which then
 * sees the original return address and the original arguments, exactly as
 * if we were not there. Only explicit handles reach C code (below), where
 * the caller does not matter, and dlvsym(RTLD_DEFAULT) of one of our own
 * names (see sfy_dl_is_own()).
 *
 * x86-64 only (the project's machines). Elsewhere dlsym is not
 * interposed and a handle lookup still finds libc's functions. */
#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "dlreal.h"
#include "real.h"
#include "sfy.h"

#if defined(__x86_64__)

/* The stubs' slow path may run inside a sanitizer runtime's start-up. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

void *sfy_dl_handle_sym(void *h, const char *name);
void *sfy_dl_handle_vsym(void *h, const char *name, const char *version);
void *sfy_dl_forward(int which);
int sfy_dl_is_own(const char *name);

/* Whether found, the definition of name, is the function our hook of that
 * name stands in for: glibc's, or the hook of a second copy of this
 * library, which stays idle (real.c).
 * Another library's function that happens to be called "send" is not. */
static bool stands_in(void *found)
{
	return sfy_real_is_glibc(found) || sfy_real_same_build(found);
}

/* Our hook for name instead of found, when found is what we interpose. */
static void *ours_for(const char *name, void *found)
{
	void *mine = sfy_dl_own(name);
	if (!mine || mine == found || !stands_in(found))
		return found;
	return mine;
}

void *sfy_dl_handle_sym(void *h, const char *name)
{
	void *p = sfy_dl()->next_dlsym(h, name);
	return p && name ? ours_for(name, p) : p;
}

/* Only the default version has our hook's signature and semantics; an
 * older compat version a program asks for by name stays glibc's. */
void *sfy_dl_handle_vsym(void *h, const char *name, const char *version)
{
	void *p = sfy_dl()->next_dlvsym(h, name, version);
	if (!p || !name || sfy_dl_default_in(p, name) != p)
		return p;
	return ours_for(name, p);
}

/* dlvsym(RTLD_DEFAULT, name, version) skips every unversioned definition
 * (glibc looks for that exact version), so it would find glibc's connect
 * past our hook. For a name we export, the answer does not depend on the
 * caller (our names are all in the global scope, which RTLD_DEFAULT
 * searches first from anywhere), so the stub sends it to
 * sfy_dl_handle_vsym(), which looks it up from here and replaces it like a
 * handle lookup; any other name is forwarded untouched. */
NO_SANITIZE int sfy_dl_is_own(const char *name)
{
	return name && sfy_dl_own(name) != NULL;
}

/* The slow path of the stubs, before the pointers are loaded. */
NO_SANITIZE void *sfy_dl_forward(int which)
{
	const struct sfy_dl *d = sfy_dl();
	return which ? (void *)d->next_dlvsym : (void *)d->next_dlsym;
}

/* RTLD_DEFAULT is 0 and RTLD_NEXT is -1. The slow paths save the three
 * argument registers (rsp is then 16-byte aligned for the call) and jump
 * on with the caller's return address still on top of the stack. */
#ifdef __CET__
#define SFY_ENDBR "endbr64\n"
#else
#define SFY_ENDBR ""
#endif
#define SFY_DL_SAVE "	pushq %rdi\n	pushq %rsi\n	pushq %rdx\n"
#define SFY_DL_RESTORE "	popq %rdx\n	popq %rsi\n	popq %rdi\n"
/* Jump to the next definition: label 1 of a stub. */
#define SFY_DL_FORWARD(which)                                                 \
	"1:	movq sfy_dl_fwd+8*" #which "(%rip), %rax\n"                   \
	"	testq %rax, %rax\n"                                           \
	"	je 2f\n"                                                      \
	"	jmp *%rax\n"                                                  \
	"2:\n" SFY_DL_SAVE                                                     \
	"	movl $" #which ", %edi\n"                                     \
	"	call sfy_dl_forward\n"                                        \
	SFY_DL_RESTORE                                                         \
	"	jmp *%rax\n"

__asm__(".text\n"
	".p2align 4\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	"dlsym:\n"
	SFY_ENDBR
	"	testq %rdi, %rdi\n"
	"	je 1f\n"
	"	cmpq $-1, %rdi\n"
	"	je 1f\n"
	"	jmp sfy_dl_handle_sym\n"
	SFY_DL_FORWARD(0)
	".size dlsym, .-dlsym\n"
	"\n"
	".p2align 4\n"
	".globl dlvsym\n"
	".type dlvsym, @function\n"
	"dlvsym:\n"
	SFY_ENDBR
	"	cmpq $-1, %rdi\n"
	"	je 1f\n"
	"	testq %rdi, %rdi\n"
	"	jne sfy_dl_handle_vsym\n"
	/* RTLD_DEFAULT: one of our names? */
	SFY_DL_SAVE
	"	movq %rsi, %rdi\n"
	"	call sfy_dl_is_own\n"
	SFY_DL_RESTORE
	"	testl %eax, %eax\n"
	"	jne sfy_dl_handle_vsym\n"
	SFY_DL_FORWARD(1)
	".size dlvsym, .-dlvsym\n");

#endif
