/* mmo_redis_url.h - the one parser of Redis URLs (the gateway's cache and
 * the Redis view).
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]     or     HOST[:PORT][/DB]
 *
 * "redis://PASSWORD@HOST" (no colon) is a password alone, as before.
 * USER and PASSWORD are percent-decoded ("%40" is '@'); PORT is 1..65535
 * (default 6379); DB is 0..1000 (default 0). Any other scheme is refused, as
 * is an empty host.
 *
 * Authentication, the one rule for every client that connects with it:
 *   user and password set -> AUTH user password   (Redis 6 ACL)
 *   password only         -> AUTH password
 *   neither               -> no AUTH
 */
#ifndef MMO_REDIS_URL_H
#define MMO_REDIS_URL_H

#include <stddef.h>

#define MMO_REDIS_PORT   6379
#define MMO_REDIS_DB_MAX 1000

struct mmo_redis_url {
	char host[256];
	int port;
	int db;
	char user[128];     /* "" when none */
	char password[512]; /* "" when none */
};

/* Parse url into *out. MMO_OK, or MMO_EINVAL with a one-line reason in err
 * (errlen bytes, NUL-terminated; err may be NULL) and *out untouched. */
int mmo_redis_url_parse(const char *url, struct mmo_redis_url *out, char *err, size_t errlen);

#endif
