/* bench_ws.c - the WebSocket side of `mmo bench gateway`: N client
 * sockets on a few epoll threads, no thread per socket.
 *
 * Each thread owns the sockets i with i % threads == its id, one small
 * state struct each; a socket's receive buffer is allocated only while a
 * partial frame waits (the thread reads into one scratch buffer), its send
 * buffer only while the kernel's is full. Sockets are bound to 127.0.0.2,
 * .3, ... (per_addr each) before connecting, so that one source address's
 * ~28k ephemeral ports do not bound the count; at most CONNECTING_MAX per
 * thread are in their handshake at once. With several gateways, socket
 * first + i goes to gateway (first + i) % nports: the sockets of one
 * cluster are spread over the gateways, and so over the bus.
 *
 * Life of a socket: non-blocking connect, GET /ws?token= upgrade, 101,
 * {"op":"subscribe","region_id":...} of its player's region, "subscribed".
 * While measuring, a thread sends {"op":"move",...,"ref":"R"} for its
 * sockets on a fixed schedule (socket i at start + i * period / N + k *
 * period, period = N / rate), keeps (ref, send time) per socket until the
 * ack, and records (seq, send time) per ack; every world.update that
 * arrives is recorded as (cause_seq, arrival time, socket). Matching the
 * two is left to the caller, after the run: a delivery that beats its ack
 * is therefore matched like any other.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_ws.h"
#include "schemas/mmo_util.h"

#define THREADS_MAX    16
#define CONNECTING_MAX 128
#define SCRATCH        (256 * 1024)
#define FRAME_MAX      (64 * 1024) /* a bigger server frame closes the socket */
#define INFLIGHT       4
#define SENDS_PER_WAKE 512
#define RECS_MAX       (32u << 20) /* per thread, each kind */

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { S_IDLE, S_CONNECTING, S_UPGRADING, S_SUBSCRIBING, S_READY, S_DEAD };

struct wsock {
	int fd;
	uint8_t state, nfl;
	bool odd;
	uint32_t ref;
	char *rx, *tx; /* pending partial frame, unsent bytes: NULL when none */
	uint32_t rxlen, txlen;
	struct {
		uint32_t ref;
		int64_t t;
	} fl[INFLIGHT];
};

struct recs {
	void *v;
	size_t n, cap, size;
};

struct wthread {
	bench_ws *w;
	unsigned id, n; /* its sockets: id, id + T, ... (n of them) */
	pthread_t th;
	bool started;
	struct recs del, snd;
	uint64_t sent, acked, errors;
};

struct bench_ws {
	struct bench_ws_opts o;
	struct wsock *s;
	struct wthread t[THREADS_MAX];
	atomic_uint opened, failed, subscribed, closed;
	atomic_uint_fast64_t delivered;
	atomic_bool measuring, stop;
	atomic_uint rate;
	_Atomic int64_t start_us, end_us;
	pthread_mutex_t mu;
	char why[160];
	struct bench_ws_delivery *del;
	struct bench_ws_send *snd;
	size_t ndel, nsnd;
};

static void note_fail(bench_ws *w, unsigned i, const char *what)
{
	pthread_mutex_lock(&w->mu);
	if (!w->why[0])
		snprintf(w->why, sizeof(w->why), "socket %u: %.120s", i, what);
	pthread_mutex_unlock(&w->mu);
}

static bool recs_push(struct recs *r, const void *e)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		void *v;

		if (cap > RECS_MAX)
			return false;
		v = realloc(r->v, cap * r->size);
		if (!v)
			return false;
		r->v = v;
		r->cap = cap;
	}
	memcpy((char *)r->v + r->n * r->size, e, r->size);
	r->n++;
	return true;
}

/* Queue or send n bytes; false when the socket broke. */
static bool out(struct wsock *s, int ep, const char *p, size_t n)
{
	ssize_t w = 0;

	if (!s->txlen) {
		w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (w < 0)
			w = 0;
		if ((size_t)w == n)
			return true;
	}
	{
		char *t = realloc(s->tx, s->txlen + (n - (size_t)w));
		struct epoll_event e = {.events = EPOLLIN | EPOLLOUT};

		if (!t)
			return false;
		memcpy(t + s->txlen, p + w, n - (size_t)w);
		s->tx = t;
		s->txlen += (uint32_t)(n - (size_t)w);
		e.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
	}
	return true;
}

static bool flush_tx(struct wsock *s, int ep)
{
	ssize_t w;

	if (!s->txlen)
		return true;
	w = send(s->fd, s->tx, s->txlen, MSG_NOSIGNAL);
	if (w < 0)
		return errno == EAGAIN || errno == EINTR;
	memmove(s->tx, s->tx + w, s->txlen - (size_t)w);
	s->txlen -= (uint32_t)w;
	if (!s->txlen) {
		struct epoll_event e = {.events = EPOLLIN};

		free(s->tx);
		s->tx = NULL;
		e.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
	}
	return true;
}

/* A masked (zero key) text frame. */
static bool send_text(struct wsock *s, int ep, const char *m, size_t n)
{
	uint8_t f[512];
	size_t h;

	if (n > sizeof(f) - 8)
		return false;
	f[0] = 0x81;
	if (n <= 125) {
		f[1] = (uint8_t)(0x80 | n);
		h = 2;
	} else {
		f[1] = 0x80 | 126;
		f[2] = (uint8_t)(n >> 8);
		f[3] = (uint8_t)n;
		h = 4;
	}
	memset(f + h, 0, 4);
	memcpy(f + h + 4, m, n);
	return out(s, ep, (char *)f, h + 4 + n);
}

static bool subscribe(bench_ws *w, struct wsock *s, unsigned i, int ep)
{
	const struct player *p = &w->o.pl[i];
	char m[96];
	int n = snprintf(m, sizeof(m), "{\"op\":\"subscribe\",\"region_id\":\"r_%d_%d\"}",
	                 (int)(p->tx / 500), (int)(p->ty / 500));

	return send_text(s, ep, m, (size_t)n);
}

static void kill_sock(bench_ws *w, struct wsock *s, int ep, const char *why, unsigned i)
{
	if (s->state == S_DEAD)
		return;
	if (s->state == S_READY)
		atomic_fetch_add(&w->closed, 1);
	else {
		atomic_fetch_add(&w->failed, 1);
		note_fail(w, i, why);
	}
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	s->fd = -1;
	s->state = S_DEAD;
	free(s->rx);
	free(s->tx);
	s->rx = s->tx = NULL;
	s->rxlen = s->txlen = 0;
}

static bool start_connect(bench_ws *w, struct wsock *s, unsigned i, int ep)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	struct epoll_event e = {.events = EPOLLOUT};
	unsigned g = w->o.first + i;
	int one = 1;

	src.sin_addr.s_addr = htonl(0x7f000002u + g / w->o.per_addr);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons((uint16_t)w->o.ports[g % w->o.nports]);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return false;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)))
		return false;
	if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)
		return false;
	s->state = S_CONNECTING;
	e.data.ptr = s;
	return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e) == 0;
}

static bool send_upgrade(bench_ws *w, struct wsock *s, unsigned i, int ep)
{
	char req[1024];
	int n = snprintf(req, sizeof(req),
	                 "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 w->o.pl[i].token);
	struct epoll_event e = {.events = EPOLLIN};

	e.data.ptr = s;
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
	s->state = S_UPGRADING;
	return n > 0 && (size_t)n < sizeof(req) && out(s, ep, req, (size_t)n);
}

/* Where the value of "key" starts in the JSON text p[0..n) (spaces after
 * the colon skipped), or NULL. Good enough for the flat messages the
 * gateway sends: a key's quoted name does not occur inside a value. */
static const char *val_of(const char *p, size_t n, const char *key)
{
	char pat[40];
	int k = snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *q = memmem(p, n, pat, (size_t)k);

	if (!q)
		return NULL;
	q += k;
	while (q < p + n && *q == ' ')
		q++;
	return q < p + n ? q : NULL;
}

static bool str_is(const char *p, size_t n, const char *key, const char *want)
{
	const char *v = val_of(p, n, key);
	size_t k = strlen(want);

	return v && *v == '"' && (size_t)(p + n - v) > k + 1 && !memcmp(v + 1, want, k) &&
	       v[k + 1] == '"';
}

static bool num_of(const char *p, size_t n, const char *key, uint64_t *out)
{
	const char *v = val_of(p, n, key);

	if (v && *v == '"')
		v++; /* a ref is a string of digits */
	if (!v || *v < '0' || *v > '9')
		return false;
	*out = strtoull(v, NULL, 10);
	return true;
}

/* The answer to the move in flight k of s: an ack (with seq) or not. */
static void answer(struct wthread *t, struct wsock *s, unsigned k, unsigned i, bool ack,
                   const char *p, size_t n)
{
	struct bench_ws_send e = {.t = s->fl[k].t, .sock = i};

	if (ack && num_of(p, n, "seq", &e.seq) && recs_push(&t->snd, &e)) {
		t->acked++;
	} else {
		char m[160];

		t->errors++;
		snprintf(m, sizeof(m), "move answered %.*s", (int)(n < 120 ? n : 120), p);
		note_fail(t->w, i, m);
	}
	s->fl[k] = s->fl[--s->nfl];
}

/* One text message of socket i. */
static void on_text(struct wthread *t, struct wsock *s, unsigned i, const char *p, size_t n,
                    int64_t now, int ep)
{
	bench_ws *w = t->w;
	bool ack = str_is(p, n, "type", "ack"), err = !ack && str_is(p, n, "type", "error");
	uint64_t ref;

	if (!ack && !err && str_is(p, n, "type", "world.update")) {
		struct bench_ws_delivery d = {.t = now, .sock = i};

		if (atomic_load(&w->measuring) && num_of(p, n, "cause_seq", &d.cause_seq) &&
		    recs_push(&t->del, &d))
			atomic_fetch_add(&w->delivered, 1);
		return;
	}
	if (s->state == S_SUBSCRIBING) {
		if (str_is(p, n, "type", "subscribed")) {
			s->state = S_READY;
			atomic_fetch_add(&w->subscribed, 1);
			atomic_fetch_add(&w->opened, 1);
		} else if (err && memmem(p, n, "rate_limited", 12)) {
			subscribe(w, s, i, ep); /* one more try per answer */
		} else if (err) {
			kill_sock(w, s, ep, "subscribe refused", i);
		}
		return;
	}
	if (!(ack || err) || !s->nfl)
		return;
	if (num_of(p, n, "ref", &ref)) {
		for (unsigned k = 0; k < s->nfl; k++)
			if (s->fl[k].ref == ref) {
				answer(t, s, k, i, ack, p, n);
				break;
			}
	} else if (err) {
		answer(t, s, 0, i, false, p, n); /* a server that does not echo the ref */
	}
}

/* Parse frames from p[0..n); returns bytes consumed, or -1 to close. */
static long frames(struct wthread *t, struct wsock *s, unsigned i, const uint8_t *p, size_t n,
                   int64_t now, int ep)
{
	size_t off = 0;

	while (n - off >= 2) {
		const uint8_t *f = p + off;
		unsigned op = f[0] & 0x0f;
		size_t plen = f[1] & 0x7f, h = 2;

		if (plen == 126) {
			if (n - off < 4)
				break;
			plen = (size_t)f[2] << 8 | f[3];
			h = 4;
		} else if (plen == 127) {
			if (n - off < 10)
				break;
			plen = 0;
			for (int k = 0; k < 8; k++)
				plen = plen << 8 | f[2 + k];
			h = 10;
		}
		if (plen > FRAME_MAX)
			return -1;
		if (n - off < h + plen)
			break;
		if (op == 0x1) {
			on_text(t, s, i, (const char *)f + h, plen, now, ep);
			if (s->state == S_DEAD)
				return -1;
		} else if (op == 0x9 && plen <= 125) {
			uint8_t pong[140];

			pong[0] = 0x8A;
			pong[1] = (uint8_t)(0x80 | plen);
			memset(pong + 2, 0, 4);
			memcpy(pong + 6, f + h, plen);
			if (!out(s, ep, (char *)pong, plen + 6))
				return -1;
		} else if (op == 0x8) {
			return -1;
		}
		off += h + plen;
	}
	return (long)off;
}

/* Read what s has; false when it died. */
static bool on_readable(struct wthread *t, struct wsock *s, unsigned i, uint8_t *scr, int64_t now,
                        int ep)
{
	for (;;) {
		size_t have = s->rxlen;
		ssize_t got;
		long used;

		if (have)
			memcpy(scr, s->rx, have);
		got = recv(s->fd, scr + have, SCRATCH - have - 1, 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (got <= 0) {
			kill_sock(t->w, s, ep, got == 0 ? "closed by the server" : strerror(errno),
			          i);
			return false;
		}
		have += (size_t)got;
		scr[have] = 0;
		if (s->state == S_UPGRADING) {
			uint8_t *end = memmem(scr, have, "\r\n\r\n", 4);
			int status = 0;

			if (!end) {
				used = 0;
				goto keep;
			}
			if (sscanf((char *)scr, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
				char m[48];

				snprintf(m, sizeof(m), "upgrade answered %d", status);
				kill_sock(t->w, s, ep, m, i);
				return false;
			}
			used = end + 4 - scr;
			memmove(scr, scr + used, have - (size_t)used);
			have -= (size_t)used;
			s->state = S_SUBSCRIBING;
			if (!subscribe(t->w, s, i, ep)) {
				kill_sock(t->w, s, ep, "cannot send subscribe", i);
				return false;
			}
		}
		used = frames(t, s, i, scr, have, now, ep);
		if (used < 0) {
			kill_sock(t->w, s, ep, "closed (frame)", i);
			return false;
		}
	keep:
		if ((size_t)used < have) {
			size_t left = have - (size_t)used;
			char *b = left > s->rxlen ? realloc(s->rx, left) : s->rx;

			if (!b || left > FRAME_MAX + 16) {
				kill_sock(t->w, s, ep, "receive buffer", i);
				return false;
			}
			memcpy(b, scr + used, left);
			s->rx = b;
			s->rxlen = (uint32_t)left;
		} else if (s->rx) {
			free(s->rx);
			s->rx = NULL;
			s->rxlen = 0;
		}
	}
}

static void send_move(struct wthread *t, struct wsock *s, unsigned i, int ep, int64_t now)
{
	const struct player *p = &t->w->o.pl[i];
	char m[160];
	int n;

	if (s->state != S_READY)
		return;
	if (s->nfl == INFLIGHT) {
		s->nfl--; /* the oldest never got its answer: counted as unacked at the end */
		memmove(&s->fl[0], &s->fl[1], sizeof(s->fl[0]) * s->nfl);
	}
	s->odd = !s->odd;
	s->ref++;
	n = snprintf(m, sizeof(m), "{\"op\":\"move\",\"x\":%.3f,\"y\":%.3f,\"z\":0,\"ref\":\"%u\"}",
	             p->tx + (s->odd ? t->w->o.sway : -t->w->o.sway), p->ty, s->ref);
	s->fl[s->nfl].ref = s->ref;
	s->fl[s->nfl].t = now;
	s->nfl++;
	t->sent++;
	if (!send_text(s, ep, m, (size_t)n))
		kill_sock(t->w, s, ep, "move send", i);
}

static void *thread_main(void *arg)
{
	struct wthread *t = arg;
	bench_ws *w = t->w;
	unsigned T = w->o.threads, next_conn = 0, cur = 0;
	int64_t round = 0;
	uint8_t *scr = malloc(SCRATCH);
	struct epoll_event ev[512];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!scr || ep < 0) {
		atomic_fetch_add(&w->failed, t->n);
		note_fail(w, t->id, "out of memory");
		goto out;
	}
	while (!atomic_load(&w->stop)) {
		int64_t now = mmo_mono_us(), wait_ms = 50;
		unsigned rate = atomic_load(&w->rate);
		int m;

		/* Connect more while few are in their handshake. */
		while (next_conn < t->n) {
			unsigned pending = 0;

			for (unsigned k = next_conn > CONNECTING_MAX * 2
			                      ? next_conn - CONNECTING_MAX * 2
			                      : 0;
			     k < next_conn; k++) {
				uint8_t st = w->s[t->id + k * T].state;

				pending +=
				    st == S_CONNECTING || st == S_UPGRADING || st == S_SUBSCRIBING;
			}
			if (pending >= CONNECTING_MAX)
				break;
			{
				unsigned i = t->id + next_conn * T;
				struct wsock *s = &w->s[i];

				if (!start_connect(w, s, i, ep)) {
					s->state = S_CONNECTING;
					kill_sock(w, s, ep, strerror(errno), i);
				}
				next_conn++;
			}
			wait_ms = 1;
			if (next_conn % 32 == 0)
				break;
		}
		/* Moves due on this thread's schedule. */
		if (rate && atomic_load(&w->measuring) && t->n) {
			int64_t start = atomic_load(&w->start_us), end = atomic_load(&w->end_us);
			double period = (double)w->o.n / rate * 1e6; /* µs per player */
			unsigned done = 0;

			for (;;) {
				unsigned i = t->id + cur * T;
				int64_t due = start + (int64_t)((double)round * period +
				                                (double)i * period / w->o.n);

				if (due >= end) {
					wait_ms = 50;
					break;
				}
				if (due > now) {
					int64_t ms = (due - now + 999) / 1000; /* no spinning */

					wait_ms = ms < wait_ms ? ms : wait_ms;
					break;
				}
				if (done++ == SENDS_PER_WAKE) {
					wait_ms = 0;
					break;
				}
				send_move(t, &w->s[i], i, ep, mmo_mono_us());
				if (++cur == t->n) {
					cur = 0;
					round++;
				}
			}
		}
		m = epoll_wait(ep, ev, 512, (int)wait_ms);
		now = mmo_mono_us();
		for (int k = 0; k < m; k++) {
			struct wsock *s = ev[k].data.ptr;
			unsigned i = (unsigned)(s - w->s);

			if (s->state == S_DEAD)
				continue;
			if (s->state == S_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || (ev[k].events & (EPOLLERR | EPOLLHUP))) {
					kill_sock(w, s, ep, err ? strerror(err) : "connect failed",
					          i);
					continue;
				}
				if (!send_upgrade(w, s, i, ep))
					kill_sock(w, s, ep, "cannot send the upgrade", i);
				continue;
			}
			if ((ev[k].events & EPOLLOUT) && !flush_tx(s, ep)) {
				kill_sock(w, s, ep, "send failed", i);
				continue;
			}
			if (ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_readable(t, s, i, scr, now, ep);
		}
	}
out:
	for (unsigned k = 0; k < t->n; k++) {
		struct wsock *s = &w->s[t->id + k * T];

		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		free(s->rx);
		free(s->tx);
		s->rx = s->tx = NULL;
	}
	if (ep >= 0)
		close(ep);
	free(scr);
	return NULL;
}

int bench_ws_start(const struct bench_ws_opts *o, bench_ws **out_w, char *why, size_t wl)
{
	bench_ws *w = calloc(1, sizeof(*w));

	if (!w || o->threads < 1 || o->threads > THREADS_MAX || !o->per_addr || !o->nports ||
	    o->nports > BENCH_WS_PORTS_MAX) {
		snprintf(why, wl, w ? "bad WebSocket client options" : "out of memory");
		free(w);
		return -1;
	}
	w->o = *o;
	w->s = calloc(o->n ? o->n : 1, sizeof(*w->s));
	if (!w->s) {
		snprintf(why, wl, "out of memory");
		free(w);
		return -1;
	}
	for (unsigned i = 0; i < o->n; i++)
		w->s[i].fd = -1;
	pthread_mutex_init(&w->mu, NULL);
	for (unsigned k = 0; k < o->threads; k++) {
		struct wthread *t = &w->t[k];

		t->w = w;
		t->id = k;
		t->n = o->n > k ? (o->n - k + o->threads - 1) / o->threads : 0;
		t->del.size = sizeof(struct bench_ws_delivery);
		t->snd.size = sizeof(struct bench_ws_send);
		if (pthread_create(&t->th, NULL, thread_main, t)) {
			snprintf(why, wl, "cannot start the WebSocket threads");
			bench_ws_stop(w);
			bench_ws_free(w);
			return -1;
		}
		t->started = true;
	}
	*out_w = w;
	return 0;
}

void bench_ws_counts(bench_ws *w, struct bench_ws_counts *c, char *why, size_t wl)
{
	memset(c, 0, sizeof(*c));
	c->opened = atomic_load(&w->opened);
	c->failed = atomic_load(&w->failed);
	c->subscribed = atomic_load(&w->subscribed);
	c->closed = atomic_load(&w->closed);
	c->delivered = atomic_load(&w->delivered);
	for (unsigned k = 0; k < w->o.threads; k++) {
		c->sent += w->t[k].sent;
		c->acked += w->t[k].acked;
		c->move_errors += w->t[k].errors;
	}
	c->unacked = c->sent - c->acked - c->move_errors;
	if (why && wl) {
		pthread_mutex_lock(&w->mu);
		snprintf(why, wl, "%s", w->why);
		pthread_mutex_unlock(&w->mu);
	}
}

void bench_ws_measure(bench_ws *w, unsigned rate, int64_t start_us, int64_t end_us)
{
	atomic_store(&w->start_us, start_us);
	atomic_store(&w->end_us, end_us);
	atomic_store(&w->rate, rate);
	atomic_store(&w->measuring, true);
}

void bench_ws_quiet(bench_ws *w)
{
	atomic_store(&w->measuring, false);
}

void bench_ws_stop(bench_ws *w)
{
	size_t nd = 0, ns = 0;

	atomic_store(&w->stop, true);
	for (unsigned k = 0; k < w->o.threads; k++) {
		if (w->t[k].started)
			pthread_join(w->t[k].th, NULL);
		w->t[k].started = false;
		nd += w->t[k].del.n;
		ns += w->t[k].snd.n;
	}
	free(w->del);
	free(w->snd);
	w->del = malloc((nd ? nd : 1) * sizeof(*w->del));
	w->snd = malloc((ns ? ns : 1) * sizeof(*w->snd));
	w->ndel = w->nsnd = 0;
	for (unsigned k = 0; k < w->o.threads && w->del && w->snd; k++) {
		memcpy(w->del + w->ndel, w->t[k].del.v, w->t[k].del.n * sizeof(*w->del));
		w->ndel += w->t[k].del.n;
		memcpy(w->snd + w->nsnd, w->t[k].snd.v, w->t[k].snd.n * sizeof(*w->snd));
		w->nsnd += w->t[k].snd.n;
	}
	for (unsigned k = 0; k < w->o.threads; k++) {
		free(w->t[k].del.v);
		free(w->t[k].snd.v);
		w->t[k].del.v = w->t[k].snd.v = NULL;
		w->t[k].del.n = w->t[k].snd.n = 0;
	}
}

size_t bench_ws_deliveries(bench_ws *w, const struct bench_ws_delivery **v)
{
	*v = w->del;
	return w->del ? w->ndel : 0;
}

size_t bench_ws_sends(bench_ws *w, const struct bench_ws_send **v)
{
	*v = w->snd;
	return w->snd ? w->nsnd : 0;
}

bool bench_ws_alive(bench_ws *w, unsigned i)
{
	return i < w->o.n && w->s[i].state == S_READY;
}

void bench_ws_free(bench_ws *w)
{
	if (!w)
		return;
	free(w->del);
	free(w->snd);
	free(w->s);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
