/* Names of local DNS answers per address (dnsmem.h).
 * STUB: remembers nothing yet. */
#include <errno.h>

#include "dnsmem.h"

int sfy_dnsmem_export_fd(void)
{
	return -ENOSYS;
}

void sfy_dnsmem_add(const char *name, const struct sockaddr *sa, socklen_t len)
{
	(void)name, (void)sa, (void)len;
}

size_t sfy_dnsmem_names(const struct sockaddr *sa, socklen_t len,
			char names[][SFY_NAME_MAX + 1], size_t max)
{
	(void)sa, (void)len, (void)names, (void)max;
	return 0;
}

void sfy_dnsmem_detach(bool close_fd)
{
	(void)close_fd;
}
