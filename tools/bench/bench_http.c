/* bench_http.c - the benchmarks' HTTP/1.1 keep-alive client: blocking
 * sockets, one request in flight per connection, the answer read to its
 * Content-Length (the gateway and the ceiling server always send one). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_http.h"
#include "schemas/mmo_util.h"

int bench_dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

bool bench_send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read more into c->buf; false on EOF, a full buffer or the deadline. */
static bool fill_more(struct hconn *c, int64_t deadline)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	ssize_t r;
	int64_t left = (deadline - mmo_mono_us()) / 1000;

	if (c->len >= sizeof(c->buf) - 1 || left <= 0)
		return false;
	if (poll(&p, 1, (int)left) <= 0)
		return false;
	r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (r <= 0)
		return false;
	c->len += (size_t)r;
	c->buf[c->len] = 0;
	return true;
}

int bench_hc_request(struct hconn *c, const char *path, const char *token, const char *body,
                     char *out, size_t cap)
{
	char req[2048];
	int n, status = 0;
	int64_t deadline = mmo_mono_us() + (int64_t)BENCH_IO_TIMEOUT_MS * 1000;
	size_t clen = 0, head;
	char *end, *cl;
	bool close_it;

	if (body)
		n = snprintf(req, sizeof(req),
		             "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sContent-Type: "
		             "application/json\r\nContent-Length: %zu\r\n\r\n%s",
		             path, token ? "Authorization: Bearer " : "", token ? token : "",
		             token ? "\r\n" : "", strlen(body), body);
	else
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n",
		             path, token ? "Authorization: Bearer " : "", token ? token : "",
		             token ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (c->fd < 0) {
			c->fd = bench_dial(c->port);
			c->len = 0;
			if (c->fd < 0)
				return 0;
		}
		if (bench_send_all(c->fd, req, (size_t)n))
			break;
		close(c->fd);
		c->fd = -1;
	}
	if (c->fd < 0)
		return 0;
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (!fill_more(c, deadline))
			goto broken;
	head = (size_t)(end + 4 - c->buf);
	if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
		goto broken;
	*end = 0;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (cl)
		clen = strtoul(cl + 17, NULL, 10);
	if (head + clen >= sizeof(c->buf))
		goto broken;
	while (c->len < head + clen)
		if (!fill_more(c, deadline))
			goto broken;
	if (out && cap) {
		size_t k = clen < cap - 1 ? clen : cap - 1;

		memcpy(out, c->buf + head, k);
		out[k] = 0;
	}
	close_it = strcasestr(c->buf, "\r\nConnection: close") != NULL;
	memmove(c->buf, c->buf + head + clen, c->len - head - clen);
	c->len -= head + clen;
	if (close_it) {
		close(c->fd);
		c->fd = -1;
	}
	return status;
broken:
	close(c->fd);
	c->fd = -1;
	return 0;
}

bool bench_json_str(const char *body, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(body, pat);
	if (!p)
		return false;
	p += strlen(pat);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= cap)
		return false;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = 0;
	return true;
}
