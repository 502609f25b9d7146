/* bench_gateway_load.c - the REST load of `mmo bench gateway`: C keep-alive
 * HTTP/1.1 connections driven by LOAD_THREADS epoll threads (one request in
 * flight per connection, so the client spends little of the shared CPU),
 * moving players first..first+np-1 in turn, closed loop or on a fixed
 * schedule at a total rate (latency from the scheduled send time: no
 * coordinated omission), each player paced under its 20 moves/s limit;
 * and the gateways' own stage figures from their /metrics.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_gateway_int.h"
#include "bench_http.h"
#include "bench_util.h"
#include "schemas/mmo_util.h"

#define PACE_US      55000 /* per player: under the 20 moves/s limit */
#define LOAD_THREADS 2     /* epoll threads driving the C connections */

/* The next step of player p: its place, or a sway around it. */
static void next_pos(struct player *p, int64_t now, double *x, double *y)
{
	double dx = p->tx - p->x, dy = p->ty - p->y, d = sqrt(dx * dx + dy * dy);
	double allow = 9.0 * (double)(now - p->last_ok) / 1e6 + 0.9;

	if (d < SWAY / 2) {
		*x = p->tx + ((p->osc++ & 1) ? SWAY : -SWAY);
		*y = p->ty;
		return;
	}
	if (d > allow) {
		*x = p->x + dx * allow / d;
		*y = p->y + dy * allow / d;
	} else {
		*x = p->tx;
		*y = p->ty;
	}
}

/* One keep-alive connection of the load, owning players id, id + C, ... */
struct lconn {
	int fd;
	unsigned id, nmine, k;
	int64_t sched; /* open loop: the next scheduled send */
	int64_t wake;  /* not before (pacing, schedule, redial backoff) */
	bool busy;     /* a request is in flight */
	bool done;     /* past the phase's end */
	unsigned pi;   /* the player in flight */
	int64_t t0, from;
	double x, y;
	size_t ilen;
	char in[16384];
};

struct lthread {
	struct bench_gw_phase *ph;
	struct lconn *c;
	unsigned n;
	int64_t interval; /* open loop, per connection */
	struct bench_hist h;
	uint64_t ok, rej, pend, lim, err;
	char why[128];
};

static void close_conn(struct lthread *t, int ep, struct lconn *c)
{
	(void)t;
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->ilen = 0;
}

/* An answer (status st, body) of c's move. */
static void answered(struct lthread *t, struct lconn *c, int st, const char *body, int64_t t1)
{
	struct bench_gw_phase *ph = t->ph;
	struct player *p = &ph->pl[c->pi];

	p->next = c->t0 + PACE_US;
	if (st == 200) {
		t->ok++;
		bench_hist_add(&t->h, (uint64_t)(t1 - c->from));
		if (!ph->ceiling) {
			const char *s = strstr(body, "\"seq\":");

			p->x = c->x;
			p->y = c->y;
			p->last_ok = t1;
			if (ph->acc && s) {
				size_t at = atomic_fetch_add(&ph->acc_n, 1);

				if (at < ph->acc_cap) {
					ph->acc[at].seq = strtoull(s + 6, NULL, 10);
					ph->acc[at].t = c->t0;
					ph->acc[at].player = c->pi;
				}
			}
		}
	} else if (st == 422) {
		t->rej++;
		if (!t->why[0])
			snprintf(t->why, sizeof(t->why), "%.120s", body);
	} else if (st == 202) {
		t->pend++;
	} else if (st == 429) {
		t->lim++;
	} else {
		t->err++;
	}
}

/* Send c's next move if it is due; else set c->wake. */
static void try_send(struct lthread *t, int ep, struct lconn *c, int64_t now)
{
	struct bench_gw_phase *ph = t->ph;
	unsigned C = ph->clients ? ph->clients : ph->cfg->clients;
	unsigned pi = ph->first + c->id + C * (c->k % c->nmine);
	struct player *p = &ph->pl[pi];
	char body[128], req[2048];
	int n;

	if (t->interval && c->sched > now) {
		c->wake = c->sched;
		return;
	}
	if (!ph->ceiling && p->next > now) {
		c->wake = p->next;
		return;
	}
	if (now >= ph->end) {
		c->done = true;
		return;
	}
	if (c->fd < 0) {
		struct epoll_event ev = {.events = EPOLLIN};

		c->fd = bench_dial(ph->port);
		if (c->fd < 0) {
			t->err++;
			c->wake = now + 10000;
			return;
		}
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	c->k++;
	c->pi = pi;
	c->t0 = now;
	/* Open loop: latency counts from the scheduled time. */
	c->from = t->interval && c->sched < now ? c->sched : now;
	if (t->interval)
		c->sched += t->interval;
	next_pos(p, now, &c->x, &c->y);
	snprintf(body, sizeof(body), "{\"x\":%.3f,\"y\":%.3f,\"z\":0}", c->x, c->y);
	n = snprintf(req, sizeof(req),
	             "POST /api/players/move HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
	             "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	             p->token, strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof(req) || !bench_send_all(c->fd, req, (size_t)n)) {
		t->err++;
		close_conn(t, ep, c);
		c->wake = now + 10000;
		return;
	}
	c->busy = true;
}

/* Read what c has; an answer whole: account for it. */
static void on_readable(struct lthread *t, int ep, struct lconn *c)
{
	ssize_t r = recv(c->fd, c->in + c->ilen, sizeof(c->in) - 1 - c->ilen, MSG_DONTWAIT);
	char *end, *cl;
	size_t head, clen = 0;
	int st = 0;
	bool close_it;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		if (c->busy) {
			t->err++;
			c->busy = false;
		}
		close_conn(t, ep, c);
		return;
	}
	if (r < 0)
		return;
	c->ilen += (size_t)r;
	c->in[c->ilen] = 0;
	if (!(end = memmem(c->in, c->ilen, "\r\n\r\n", 4)))
		return;
	head = (size_t)(end + 4 - c->in);
	cl = strcasestr(c->in, "\r\nContent-Length:");
	if (cl && cl < end)
		clen = strtoul(cl + 17, NULL, 10);
	if (head + clen >= sizeof(c->in)) {
		t->err++;
		c->busy = false;
		close_conn(t, ep, c);
		return;
	}
	if (c->ilen < head + clen)
		return;
	sscanf(c->in, "HTTP/1.%*d %d", &st);
	*end = 0;
	close_it = strcasestr(c->in, "\r\nConnection: close") != NULL;
	{
		char saved = c->in[head + clen];

		c->in[head + clen] = 0;
		answered(t, c, st, c->in + head, mmo_mono_us());
		c->in[head + clen] = saved;
	}
	memmove(c->in, c->in + head + clen, c->ilen - head - clen);
	c->ilen -= head + clen;
	c->busy = false;
	if (close_it)
		close_conn(t, ep, c);
}

static void *load_main(void *arg)
{
	struct lthread *t = arg;
	struct bench_gw_phase *ph = t->ph;
	struct epoll_event ev[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		t->err++;
		return NULL;
	}
	while (!bench_gw_interrupted) {
		int64_t now = mmo_mono_us(), wake = now + 10000;
		unsigned live = 0;
		int n;

		for (unsigned i = 0; i < t->n; i++) {
			struct lconn *c = &t->c[i];

			if (c->done || !c->nmine)
				continue;
			live++;
			if (!c->busy && c->wake <= now)
				try_send(t, ep, c, now);
			if (!c->busy && !c->done && c->wake < wake)
				wake = c->wake;
		}
		if (!live)
			break;
		n = epoll_wait(ep, ev, 256, wake > now ? (int)((wake - now + 999) / 1000) : 0);
		for (int i = 0; i < n; i++)
			on_readable(t, ep, ev[i].data.ptr);
		if (mmo_mono_us() > ph->end + (int64_t)BENCH_IO_TIMEOUT_MS * 1000)
			break; /* answers that never come */
	}
	for (unsigned i = 0; i < t->n; i++) {
		if (t->c[i].busy)
			t->err++;
		close_conn(t, ep, &t->c[i]);
	}
	close(ep);
	return NULL;
}

int bench_gw_run_phase(struct bench_gw_phase *ph, char *why, size_t wl)
{
	unsigned C = ph->clients ? ph->clients : ph->cfg->clients;
	unsigned T = C < LOAD_THREADS ? C : LOAD_THREADS, started = 0;
	struct lconn *conns = calloc(C, sizeof(*conns));
	struct lthread *th = calloc(T, sizeof(*th));
	pthread_t *tid = calloc(T, sizeof(*tid));
	int64_t interval = ph->rate ? (int64_t)C * 1000000 / ph->rate : 0;

	if (!conns || !th || !tid) {
		free(conns);
		free(th);
		free(tid);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	pthread_mutex_init(&ph->mu, NULL);
	ph->start = mmo_mono_us() + 20000;
	ph->end = ph->start + (int64_t)ph->cfg->duration * 1000000;
	for (unsigned j = 0; j < C; j++) {
		struct lconn *c = &conns[j];

		c->fd = -1;
		c->id = j;
		for (unsigned i = j; i < ph->np; i += C)
			c->nmine++;
		c->sched = ph->start + (interval ? interval * j / C : 0);
		c->wake = ph->start;
	}
	for (unsigned i = 0; i < T; i++) {
		th[i].ph = ph;
		th[i].interval = interval;
		th[i].c = conns + (size_t)C * i / T;
		th[i].n = (unsigned)((size_t)C * (i + 1) / T - (size_t)C * i / T);
		if (pthread_create(&tid[i], NULL, load_main, &th[i])) {
			snprintf(why, wl, "cannot start client threads");
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		bench_hist_merge(&ph->h, &th[i].h);
		ph->ok += th[i].ok;
		ph->rejected += th[i].rej;
		ph->pending += th[i].pend;
		ph->limited += th[i].lim;
		ph->errors += th[i].err;
		if (th[i].why[0] && !ph->reject_why[0])
			snprintf(ph->reject_why, sizeof(ph->reject_why), "%s", th[i].why);
	}
	pthread_mutex_destroy(&ph->mu);
	free(conns);
	free(th);
	free(tid);
	return started == T ? 0 : -1;
}

void bench_gw_note_phase(const char *name, unsigned r, const struct bench_gw_phase *ph, double secs)
{
	printf("run %u %s: per_s=%.0f ok=%llu p50_us=%llu p99_us=%llu rejected=%llu "
	       "pending_202=%llu rate_limited=%llu errors=%llu\n",
	       r, name, (double)ph->ok / secs, (unsigned long long)ph->ok,
	       (unsigned long long)bench_hist_quantile(&ph->h, 0.50),
	       (unsigned long long)bench_hist_quantile(&ph->h, 0.99),
	       (unsigned long long)ph->rejected, (unsigned long long)ph->pending,
	       (unsigned long long)ph->limited, (unsigned long long)ph->errors);
	if (ph->reject_why[0])
		printf("run %u %s: first rejection: %s\n", r, name, ph->reject_why);
	fflush(stdout);
}

static const char *const stage_name[3] = {"commit", "outcome", "delivery"};

/* Adds one gateway's sums to st. */
static void read_stages_of(int port, struct bench_gw_stages *st)
{
	struct hconn *c = calloc(1, sizeof(*c));
	char *body = malloc(sizeof(c->buf));

	if (!c || !body)
		goto out;
	c->fd = -1;
	c->port = port;
	if (bench_hc_request(c, "/metrics", NULL, NULL, body, sizeof(c->buf)) != 200)
		goto out;
	for (int k = 0; k < 3; k++) {
		char key[96];
		const char *q;

		snprintf(key, sizeof(key), "mmo_gw_event_latency_seconds_sum{stage=\"%s\"} ",
		         stage_name[k]);
		if ((q = strstr(body, key)))
			st->sum[k] += strtod(q + strlen(key), NULL);
		snprintf(key, sizeof(key), "mmo_gw_event_latency_seconds_count{stage=\"%s\"} ",
		         stage_name[k]);
		if ((q = strstr(body, key)))
			st->n[k] += strtod(q + strlen(key), NULL);
	}
out:
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	free(body);
}

void bench_gw_read_stages(const int *ports, unsigned n, struct bench_gw_stages *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < n; i++)
		read_stages_of(ports[i], st);
	st->gateways = n;
}

/* One line of the stages' mean latency between two reads. */
void bench_gw_note_stages(unsigned r, const char *phase, const struct bench_gw_stages *a,
                          const struct bench_gw_stages *b)
{
	printf("run %u %s: gateway stages mean_ms", r, phase);
	for (int k = 0; k < 3; k++) {
		double n = b->n[k] - a->n[k];

		printf(" %s=%.2f", stage_name[k], n > 0 ? (b->sum[k] - a->sum[k]) / n * 1e3 : 0.0);
	}
	printf(" (from %s /metrics)\n", b->gateways > 1 ? "the gateways'" : "its");
}
