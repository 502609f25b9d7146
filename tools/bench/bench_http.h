/* bench_http.h - the benchmarks' HTTP/1.1 keep-alive client (internal to
 * tools/bench): one blocking connection, one request at a time. */
#ifndef MMO_BENCH_HTTP_H
#define MMO_BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define BENCH_IO_TIMEOUT_MS 10000 /* one HTTP exchange */

struct hconn {
	int fd, port; /* fd < 0: not connected (the next request dials) */
	size_t len;
	char buf[16384];
};

/* A TCP connection to 127.0.0.1:port with TCP_NODELAY; -1 on failure. */
int bench_dial(int port);

/* Write all n bytes of p; false on any error (MSG_NOSIGNAL). */
bool bench_send_all(int fd, const char *p, size_t n);

/* One request (POST with body, or GET when body is NULL) on c, dialing or
 * re-dialing when needed. token (borrowed) adds a Bearer header. The body
 * of the answer is copied into out (NUL-terminated, cut to cap). Returns
 * the status, 0 on I/O failure or timeout. */
int bench_hc_request(struct hconn *c, const char *path, const char *token, const char *body,
                     char *out, size_t cap);

/* Copy the string value of "key" in a flat JSON text into out (cap bytes
 * with the NUL); false when absent or too long. */
bool bench_json_str(const char *body, const char *key, char *out, size_t cap);

#endif
