/* The BSD r-commands: rcmd(), rexec() and ruserok() resolve the host and
 * (but ruserok) connect inside glibc, through its internal calls, which no
 * interposer sees: they would resolve with the local resolver and connect
 * directly. They cannot be tunnelled either (rcmd binds a reserved port
 * and takes the server's connection back for stderr), so they fail like
 * any connection that cannot be made safe: -1, errno EACCES (what the
 * kernel says when a connect is refused by policy) and one warn line.
 * iruserok() takes an address and reads only local files; rresvport()
 * only binds: both stay glibc's. */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>

#include "log.h"
#include "sfy.h"
#include "state.h"

static int refuse(const char *fn, const char *host)
{
	/* The log goes where the config says: load it first. */
	(void)sfy_config_get();
	sfy_warn("%s(%s) refused (EACCES): it resolves and connects inside libc, where "
		 "socksify cannot send it through the proxy", fn, host ? host : "");
	errno = EACCES;
	return -1;
}

SFY_EXPORT int rcmd(char **ahost, unsigned short rport, const char *locuser,
		    const char *remuser, const char *cmd, int *fd2p)
{
	(void)rport, (void)locuser, (void)remuser, (void)cmd, (void)fd2p;
	return refuse("rcmd", ahost ? *ahost : NULL);
}

SFY_EXPORT int rcmd_af(char **ahost, unsigned short rport, const char *locuser,
		       const char *remuser, const char *cmd, int *fd2p, sa_family_t af)
{
	(void)rport, (void)locuser, (void)remuser, (void)cmd, (void)fd2p, (void)af;
	return refuse("rcmd_af", ahost ? *ahost : NULL);
}

SFY_EXPORT int rexec(char **ahost, int rport, const char *name, const char *pass,
		     const char *cmd, int *fd2p)
{
	(void)rport, (void)name, (void)pass, (void)cmd, (void)fd2p;
	return refuse("rexec", ahost ? *ahost : NULL);
}

SFY_EXPORT int rexec_af(char **ahost, int rport, const char *name, const char *pass,
			const char *cmd, int *fd2p, sa_family_t af)
{
	(void)rport, (void)name, (void)pass, (void)cmd, (void)fd2p, (void)af;
	return refuse("rexec_af", ahost ? *ahost : NULL);
}

SFY_EXPORT int ruserok(const char *rhost, int suser, const char *remuser, const char *locuser)
{
	(void)suser, (void)remuser, (void)locuser;
	return refuse("ruserok", rhost);
}

SFY_EXPORT int ruserok_af(const char *rhost, int suser, const char *remuser,
			  const char *locuser, sa_family_t af)
{
	(void)suser, (void)remuser, (void)locuser, (void)af;
	return refuse("ruserok_af", rhost);
}
