/* The real libc functions behind the interposers. dlsym(RTLD_NEXT) from
 * this library finds the next definition in load order (libc, or a
 * sanitizer runtime's interceptor preloaded before us), never our own. */
#include <dlfcn.h>
#include <pthread.h>

#include "real.h"

static struct sfy_real real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

#define LOAD(name) (*(void **)&real.name = dlsym(RTLD_NEXT, #name))

static void real_load(void)
{
	LOAD(connect);
	LOAD(sendto);
	LOAD(sendmsg);
	LOAD(sendmmsg);
	LOAD(send);
	LOAD(recv);
	LOAD(recvfrom);
	LOAD(recvmsg);
	LOAD(recvmmsg);
	LOAD(read);
	LOAD(write);
	LOAD(readv);
	LOAD(writev);
	LOAD(close);
	LOAD(dup);
	LOAD(dup2);
	LOAD(dup3);
	LOAD(close_range);
	LOAD(closefrom);
	LOAD(syscall);
	*(void **)&real.read_chk = dlsym(RTLD_NEXT, "__read_chk");
	*(void **)&real.recv_chk = dlsym(RTLD_NEXT, "__recv_chk");
	*(void **)&real.recvfrom_chk = dlsym(RTLD_NEXT, "__recvfrom_chk");
	LOAD(getpeername);
	LOAD(getaddrinfo);
	LOAD(freeaddrinfo);
	LOAD(getaddrinfo_a);
	LOAD(getnameinfo);
	LOAD(gethostbyname);
	LOAD(gethostbyname2);
	LOAD(gethostbyname_r);
	LOAD(gethostbyname2_r);
	LOAD(gethostbyaddr);
	LOAD(gethostbyaddr_r);
	LOAD(res_query);
	LOAD(res_search);
	LOAD(res_querydomain);
	LOAD(res_send);
	LOAD(res_nquery);
	LOAD(res_nsearch);
	LOAD(res_nquerydomain);
	LOAD(res_nsend);
}

const struct sfy_real *sfy_real(void)
{
	pthread_once(&real_once, real_load);
	return &real;
}
