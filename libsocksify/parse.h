/* Outcome of feeding reply bytes to a codec parser. A parser never reads
 * past the end of the reply it parses, so a handshake can read exactly the
 * bytes it needs and never consume the application's data. */
#ifndef SFY_PARSE_H
#define SFY_PARSE_H

enum sfy_parse {
	SFY_PARSE_MALFORMED = -1,  /* not this protocol / invalid field */
	SFY_PARSE_COMPLETE = 0,    /* *need = exact length of the reply */
	SFY_PARSE_NEED = 1,        /* *need = total bytes required so far (> len) */
};

#endif
