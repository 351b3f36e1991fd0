/* One table from SOCKS reply codes (and HTTP CONNECT statuses) to the errno
 * connect() reports (positive; 0 for success), plus their names for the log
 * line. The mapping and its reasons are in errmap.c. */
#ifndef SFY_ERRMAP_H
#define SFY_ERRMAP_H

#include <stdint.h>

int sfy_errno_from_s5(uint8_t rep);
int sfy_errno_from_s4(uint8_t code);
int sfy_errno_from_http(int status);
const char *sfy_s5_rep_str(uint8_t rep);
const char *sfy_s4_code_str(uint8_t code);
/* Never NULL; unknown codes get a generic string (log it with the number). */
const char *sfy_http_status_str(int status);

#endif
