/* bench_gateway_load.c - the REST load of `mmo bench gateway`: C client
 * threads, each with one keep-alive HTTP/1.1 connection (bench_http.c),
 * moving players first..first+np-1 in turn, closed loop or on a fixed
 * schedule at a total rate (latency from the scheduled send time: no
 * coordinated omission), each player paced under its 20 moves/s limit;
 * and the gateways' own stage figures from their /metrics.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_gateway_int.h"
#include "bench_http.h"
#include "bench_util.h"
#include "schemas/mmo_util.h"

#define PACE_US 55000 /* per player: under the 20 moves/s limit */

struct worker {
	struct bench_gw_phase *ph;
	unsigned id;
};

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

static void *load_main(void *arg)
{
	struct worker *w = arg;
	struct bench_gw_phase *ph = w->ph;
	unsigned C = ph->clients ? ph->clients : ph->cfg->clients, nmine = 0, k = 0;
	struct hconn *c = calloc(1, sizeof(*c));
	struct bench_hist *h = calloc(1, sizeof(*h));
	uint64_t ok = 0, rej = 0, pend = 0, lim = 0, err = 0;
	int64_t interval = 0, sched;
	char body[128], out[1024], why[128] = "";

	if (!c || !h)
		goto out;
	c->fd = -1;
	c->port = ph->port;
	for (unsigned i = w->id; i < ph->np; i += C)
		nmine++;
	if (!nmine)
		goto out;
	if (ph->rate)
		interval = (int64_t)C * 1000000 / ph->rate;
	sched = ph->start + (interval ? interval * w->id / C : 0);
	while (!bench_gw_interrupted) {
		unsigned pi = ph->first + w->id + C * (k++ % nmine);
		struct player *p = &ph->pl[pi];
		int64_t now = mmo_mono_us(), t0, t1, from;
		double x, y;
		int st;

		if (interval) {
			if (sched > now)
				bench_sleep_us(sched - now);
		}
		if (!ph->ceiling && p->next > mmo_mono_us())
			bench_sleep_us(p->next - mmo_mono_us());
		t0 = mmo_mono_us();
		/* Open loop: latency counts from the scheduled time. */
		from = interval && sched < t0 ? sched : t0;
		if (interval)
			sched += interval;
		if (t0 >= ph->end)
			break;
		next_pos(p, t0, &x, &y);
		snprintf(body, sizeof(body), "{\"x\":%.3f,\"y\":%.3f,\"z\":0}", x, y);
		st = bench_hc_request(c, "/api/players/move", p->token, body, out, sizeof(out));
		t1 = mmo_mono_us();
		p->next = t0 + PACE_US;
		if (st == 200) {
			ok++;
			bench_hist_add(h, (uint64_t)(t1 - from));
			if (!ph->ceiling) {
				const char *s = strstr(out, "\"seq\":");

				p->x = x;
				p->y = y;
				p->last_ok = t1;
				if (ph->acc && s) {
					size_t at = atomic_fetch_add(&ph->acc_n, 1);

					if (at < ph->acc_cap) {
						ph->acc[at].seq = strtoull(s + 6, NULL, 10);
						ph->acc[at].t = t0;
						ph->acc[at].player = pi;
					}
				}
			}
		} else if (st == 422) {
			rej++;
			if (!why[0])
				snprintf(why, sizeof(why), "%.120s", out);
		} else if (st == 202) {
			pend++;
		} else if (st == 429) {
			lim++;
		} else {
			err++;
			if (!st)
				bench_sleep_us(10000);
		}
	}
out:
	pthread_mutex_lock(&ph->mu);
	if (h)
		bench_hist_merge(&ph->h, h);
	ph->ok += ok;
	ph->rejected += rej;
	ph->pending += pend;
	ph->limited += lim;
	ph->errors += err;
	if (why[0] && !ph->reject_why[0])
		snprintf(ph->reject_why, sizeof(ph->reject_why), "%s", why);
	pthread_mutex_unlock(&ph->mu);
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	free(h);
	return NULL;
}

int bench_gw_run_phase(struct bench_gw_phase *ph, char *why, size_t wl)
{
	unsigned n = ph->clients ? ph->clients : ph->cfg->clients, started = 0;
	pthread_t *th = calloc(n, sizeof(*th));
	struct worker *w = calloc(n, sizeof(*w));

	if (!th || !w) {
		free(th);
		free(w);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	pthread_mutex_init(&ph->mu, NULL);
	ph->start = mmo_mono_us() + 20000;
	ph->end = ph->start + (int64_t)ph->cfg->duration * 1000000;
	for (unsigned i = 0; i < n; i++) {
		w[i].ph = ph;
		w[i].id = i;
		if (pthread_create(&th[i], NULL, load_main, &w[i])) {
			snprintf(why, wl, "cannot start client threads");
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&ph->mu);
	free(th);
	free(w);
	return started == n ? 0 : -1;
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
