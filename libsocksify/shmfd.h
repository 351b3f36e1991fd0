/* A sealed memfd shared by a whole process tree: the fake-DNS table and the
 * proxy-state table each live in one, mapped MAP_SHARED by every process.
 *
 * Creating. The memfd is sized, then sealed against shrinking and growing
 * (no process of the tree can make another's mapping fault with SIGBUS)
 * and against further seals (nor add F_SEAL_FUTURE_WRITE to lock the others
 * out). It cannot be sealed against writes, since every process writes it:
 * its contents stay untrusted and each table checks what it reads.
 *
 * Finding. The environment carries FD:PID:ID -- the descriptor, the process
 * that held it there, the table's random id. The number is only a hint: a
 * program may close it or dup2() over it (the close/dup hooks then move the
 * table to another number first, sfy_shm_evict()), Python's subprocess and
 * posix_spawn's closefrom action close it where no hook can see, and bash
 * builds its children's environment from its own copy, so no in-place
 * update of the variable could reach them. sfy_shm_find() therefore looks
 * for the table by its id: at the named number, then among this process's
 * own descriptors (a moved table is still inherited, at another number),
 * then through /proc/PID/fd of the named process and of the parent. */
#ifndef SFY_SHMFD_H
#define SFY_SHMFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Above the descriptors shells and programs use for redirections (bash
 * takes 10+ and 255), so a program rarely lands on one by chance. */
#define SFY_SHM_FD_MIN 100

/* What the environment variable says. */
struct sfy_shm_ref {
	int fd;
	long pid;
	uint64_t id;
};

/* Parses FD:PID:ID (hex id, != 0). False for anything else. */
bool sfy_shm_parse(const char *v, struct sfy_shm_ref *r);
/* FD:PID:ID naming fd of this process. */
void sfy_shm_format(int fd, uint64_t id, char *buf, size_t n);
/* A random id, never 0. */
uint64_t sfy_shm_new_id(void);

/* An empty memfd that allows sealing, at a number >= SFY_SHM_FD_MIN, not
 * close-on-exec. fd or -errno. */
int sfy_shm_memfd(const char *name);
/* A memfd named name of size bytes at a number >= SFY_SHM_FD_MIN, not
 * close-on-exec (exec'd children attach), sealed as above. fd or -errno. */
int sfy_shm_create(const char *name, uint64_t size);
/* fd's size when it is a regular file carrying all three seals, else -1. */
int64_t sfy_shm_sealed_size(int fd);

/* Is fd the table of this id? The table's own check (size, magic, id);
 * called only for sealed files. */
typedef bool sfy_shm_is_fn(int fd, uint64_t id);

/* ---- tables of a fixed size (proxy state, DNS answers) ---- */

/* The head of such a table: what says which table a file is. */
struct sfy_shm_head {
	char magic[8];
	uint64_t id;            /* random, names the table in its variable */
};

/* fd (sealed) is size bytes and headed by magic and id: an sfy_shm_is_fn's
 * check for a fixed-size table. */
bool sfy_shm_head_is(int fd, uint64_t size, const char magic[static 8], uint64_t id);
/* sfy_shm_create(name, size) headed by magic and a new id. fd or -errno. */
int sfy_shm_head_create(const char *name, uint64_t size, const char magic[static 8]);
/* The table without a memfd, shared with fork()ed children only: an
 * anonymous MAP_SHARED mapping (flags added) headed by magic and a new id.
 * NULL if it cannot be mapped. */
void *sfy_shm_head_private(uint64_t size, const char magic[static 8], int flags);

/* The table r names, named name at memfd_create(): *own is false for a
 * descriptor this process inherited (it stays open when we let go of the
 * table), true for one opened here through /proc (not close-on-exec, so
 * our exec'd children inherit it). Returns the fd or -1. */
int sfy_shm_find(const struct sfy_shm_ref *r, const char *name, sfy_shm_is_fn *is, bool *own);

/* ---- keeping the tables' descriptors out of the program's way ---- */

enum { SFY_SHM_FAKEDNS, SFY_SHM_PXSTATE, SFY_SHM_DNSMEM, SFY_SHM_NGUARD };

/* Each table's variable and memfd name, by the index above. */
#define SFY_SHM_FAKEDNS_ENV "SOCKSIFY_FAKEDNS_FD"
#define SFY_SHM_FAKEDNS_NAME "socksify-fakedns"
#define SFY_SHM_PXSTATE_ENV "SOCKSIFY_PROXYSTATE_FD"
#define SFY_SHM_PXSTATE_NAME "socksify-proxystate"
#define SFY_SHM_DNSMEM_ENV "SOCKSIFY_DNSMEM_FD"
#define SFY_SHM_DNSMEM_NAME "socksify-dnsmem"

/* The table `which` the environment names, wherever it is now
 * (sfy_shm_find with that table's variable and memfd name): fd or -1;
 * *named says whether the variable named a table at all. */
int sfy_shm_attach(int which, sfy_shm_is_fn *is, bool *own, bool *named);
/* Sets the table's variable to FD:PID:ID for this process's children,
 * FD the number the table is guarded at now. False if it has none. */
bool sfy_shm_export(int which, uint64_t id);

/* Records the descriptor table `which` lives on in this process (-1: none). */
void sfy_shm_guard_set(int which, int fd);
int sfy_shm_guard_get(int which);

/* The program is about to close fd or dup2() over it: if a table lives
 * there, moves it to a new number first (F_DUPFD, so still inherited
 * across exec) and records that. Children find it by its id. A few atomic
 * loads when fd holds no table. The first call of a process also takes
 * the inherited tables' numbers from the environment (a process that never
 * looked a name up, a shell, still holds the tree's table for its
 * children). */
void sfy_shm_evict(int fd);
/* The tables' descriptors within [first, last], ascending: close_range()
 * and closefrom() close around them. Returns how many (at most max). */
int sfy_shm_guarded_in(unsigned first, unsigned last, int out[], int max);

#endif
