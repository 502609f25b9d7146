/* bench_gateway_ws.c - phase (c) of `mmo bench gateway`: W WebSockets in
 * M client processes.
 *
 * One process holds at most RLIMIT_NOFILE descriptors (20,000 here, hard),
 * so the sockets are spread over client processes forked while the bench
 * has no thread. Each has whole clusters of players (bench_gw_slice), so
 * a move and every delivery it causes are seen by one process, which
 * matches them itself; its share of --ws-rate is its share of the sockets,
 * so every player moves at the same pace; socket i (of the whole run)
 * connects to gateway i % N (bench_ws.c).
 *
 * The bench drives each client over two pipes (one writer, one reader
 * each), fixed-size messages:
 *   bench -> client   OPEN (the gateways' ports): open and subscribe;
 *   client -> bench   PROGRESS (twice a second), then OPENED;
 *   bench -> client   MEASURE (start, end, rate): move, drain, match;
 *   client -> bench   RESULT, then two histograms (deliveries, REST moves);
 *   end of file on its commands: the client exits.
 * Times are CLOCK_MONOTONIC (mmo_mono_us), the same in every process. The
 * bench merges the counts and histograms into one result.
 *
 * Matching (in each client, after its moves): sends are (seq of the ack or
 * 200, send time, player), deliveries (cause_seq, arrival, socket); a
 * delivery counts when its cause_seq is a recorded send of a player of the
 * receiving socket's cluster. Expected = per acknowledged move, the sockets
 * of its cluster open to the end; missing = expected - matched (must be 0).
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_gateway_int.h"
#include "bench_util.h"
#include "bench_ws.h"
#include "schemas/mmo_util.h"

enum { CMD_OPEN = 1, CMD_MEASURE };
enum { MSG_PROGRESS = 1, MSG_OPENED, MSG_RESULT };

struct kid_cmd {
	uint32_t op, rate, nports, pad;
	int ports[BENCH_WS_PORTS_MAX];
	int64_t start, end;
};

struct kid_msg {
	uint32_t type;
	uint32_t subscribed, failed, closed;
	uint64_t sent, acked, move_errors, unacked; /* socket moves */
	uint64_t moves, matched, expected, missing, dup, foreign, unmatched;
	uint64_t rest_ok, rest_rejected, rest_pending, rest_limited, rest_errors;
	int64_t t_max;      /* the last matched delivery */
	int64_t drained_us; /* from the end of the moves to the last delivery */
	char why[160], reject_why[128];
};

/* A client process as the bench sees it. */
struct kid {
	int cmd, rep; /* the bench's ends: commands to it, reports from it */
	unsigned first, n;
	struct kid_msg last; /* its last PROGRESS or OPENED */
	bool opened, done;
	struct kid_msg res;
};

/* What a client process knows about itself. */
struct kid_ctx {
	const struct bench_gw_config *cfg;
	struct player *pl; /* every player; its own are first..first+n-1 */
	unsigned k, first, n, threads, rest_clients;
	int cmd, rep;
};

static struct kid kids[PROCS_MAX];
static volatile pid_t kid_pid[PROCS_MAX];
static unsigned nkids;

/* ------------------------------------------------------------ pipes */

static bool write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

/* false at end of file or on an error. */
static bool read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		c += r;
		n -= (size_t)r;
	}
	return true;
}

/* Share k of total split by the slice first..first+n-1 of the w sockets:
 * the shares add up to total exactly. */
static unsigned share(unsigned total, unsigned first, unsigned n, unsigned w)
{
	return (unsigned)((uint64_t)total * (first + n) / w - (uint64_t)total * first / w);
}

/* Epoll threads of client process k: --ws-threads split, at least one. */
static unsigned kid_threads(const struct bench_gw_config *cfg, unsigned k)
{
	unsigned t = cfg->ws_threads / cfg->ws_procs + (k < cfg->ws_threads % cfg->ws_procs);

	return t ? t : 1;
}

/* ------------------------------------------------------------ the client process */

struct sent {
	uint64_t seq;
	int64_t t;
	unsigned player, got; /* player: index among the process's own */
};

static int cmp_sent(const void *a, const void *b)
{
	uint64_t x = ((const struct sent *)a)->seq, y = ((const struct sent *)b)->seq;

	return (x > y) - (x < y);
}

static struct sent *find_sent(struct sent *v, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].seq == seq ? &v[lo] : NULL;
}

static void kid_open(const struct kid_ctx *x, const struct kid_cmd *c, bench_ws **out)
{
	struct bench_ws_opts o = {.nports = c->nports,
	                          .pl = x->pl + x->first,
	                          .n = x->n,
	                          .first = x->first,
	                          .threads = x->threads,
	                          .per_addr = PER_ADDR,
	                          .sway = SWAY};
	struct kid_msg m = {0};
	struct bench_ws_counts k;
	int64_t t0 = mmo_mono_us(), last = t0;

	memcpy(o.ports, c->ports, sizeof(o.ports));
	if (bench_ws_start(&o, out, m.why, sizeof(m.why))) {
		*out = NULL;
		m.type = MSG_OPENED;
		m.failed = x->n;
		write_all(x->rep, &m, sizeof(m));
		return;
	}
	for (;;) {
		bench_ws_counts(*out, &k, NULL, 0);
		if (k.subscribed + k.failed >= x->n ||
		    mmo_mono_us() - t0 > 60000000 + (int64_t)x->n * 5000)
			break;
		if (mmo_mono_us() - last >= 500000) {
			last = mmo_mono_us();
			m.type = MSG_PROGRESS;
			m.subscribed = k.subscribed;
			m.failed = k.failed;
			if (!write_all(x->rep, &m, sizeof(m)))
				_exit(1);
		}
		bench_sleep_us(50000);
	}
	bench_ws_counts(*out, &k, m.why, sizeof(m.why));
	m.type = MSG_OPENED;
	m.subscribed = k.subscribed;
	m.failed = k.failed;
	if (!write_all(x->rep, &m, sizeof(m)))
		_exit(1);
}

/* The REST moves of this process's players (--ws-moves rest), recorded
 * in ph. 0 or -1 with why filled. */
static int kid_rest_moves(const struct kid_ctx *x, const struct kid_cmd *c,
                          struct bench_gw_phase *ph, char *why, size_t wl)
{
	ph->cfg = x->cfg;
	ph->pl = x->pl;
	ph->first = x->first;
	ph->np = x->n;
	ph->clients = x->rest_clients;
	ph->port = c->ports[x->k % c->nports];
	ph->rate = c->rate ? c->rate : 1;
	ph->acc_cap = (size_t)ph->rate * x->cfg->duration * 2 + 1024;
	ph->acc = calloc(ph->acc_cap, sizeof(*ph->acc));
	if (!ph->acc) {
		snprintf(why, wl, "out of memory");
		return -1;
	}
	bench_sleep_us(c->start - 20000 - mmo_mono_us()); /* its own start is 20 ms later */
	return bench_gw_run_phase(ph, why, wl);
}

/* Match sends and deliveries into m and dh (m->why on failure). */
static void kid_match(const struct kid_ctx *x, bench_ws *ws, const struct bench_gw_phase *ph,
                      struct kid_msg *m, struct bench_hist *dh)
{
	const struct player *pl = x->pl + x->first;
	const struct bench_ws_delivery *dv;
	const struct bench_ws_send *wv;
	size_t nd = bench_ws_deliveries(ws, &dv), nw = bench_ws_sends(ws, &wv), ns = 0;
	size_t na = ph->acc ? atomic_load(&ph->acc_n) : 0;
	unsigned nc = (x->cfg->ws_clients + CLUSTER - 1) / CLUSTER;
	unsigned *alive = calloc(nc + 1, sizeof(*alive));
	struct sent *sv;

	if (na > ph->acc_cap)
		na = ph->acc_cap;
	sv = calloc((x->cfg->ws_socket ? nw : na) + 1, sizeof(*sv));
	if (!sv || !alive) {
		snprintf(m->why, sizeof(m->why), "out of memory");
		goto out;
	}
	if (x->cfg->ws_socket) {
		for (size_t i = 0; i < nw; i++)
			sv[ns++] = (struct sent){wv[i].seq, wv[i].t, wv[i].sock, 0};
	} else {
		for (size_t i = 0; i < na; i++)
			sv[ns++] = (struct sent){ph->acc[i].seq, ph->acc[i].t,
			                         ph->acc[i].player - x->first, 0};
	}
	qsort(sv, ns, sizeof(*sv), cmp_sent);
	for (unsigned i = 0; i < x->n; i++)
		if (bench_ws_alive(ws, i))
			alive[pl[i].cluster]++;
	for (size_t i = 0; i < nd; i++) {
		struct sent *s = find_sent(sv, ns, dv[i].cause_seq);

		if (!s) {
			m->unmatched++;
		} else if (pl[s->player].cluster != pl[dv[i].sock].cluster) {
			m->foreign++;
		} else {
			m->matched++;
			s->got++;
			if (dv[i].t > m->t_max)
				m->t_max = dv[i].t;
			bench_hist_add(dh, dv[i].t > s->t ? dv[i].t - s->t : 0);
		}
	}
	for (size_t i = 0; i < ns; i++) {
		unsigned want = alive[pl[sv[i].player].cluster];

		m->expected += want;
		if (sv[i].got < want)
			m->missing += want - sv[i].got;
		else
			m->dup += sv[i].got - want;
	}
	m->moves = ns;
out:
	free(sv);
	free(alive);
}

/* Move from c->start to c->end, wait for the deliveries in flight, match,
 * report. ws (may be NULL: it did not start) is stopped. */
static void kid_measure(const struct kid_ctx *x, const struct kid_cmd *c, bench_ws *ws)
{
	struct kid_msg m = {.type = MSG_RESULT};
	struct bench_hist *dh = calloc(1, sizeof(*dh));
	struct bench_gw_phase *ph = calloc(1, sizeof(*ph));
	struct bench_ws_counts k;

	if (!dh || !ph)
		_exit(1); /* the bench reports the process as gone */
	if (!ws)
		goto report;
	bench_ws_measure(ws, x->cfg->ws_socket ? c->rate : 0, c->start, c->end);
	if (!x->cfg->ws_socket) {
		if (kid_rest_moves(x, c, ph, m.why, sizeof(m.why)))
			goto report;
	} else {
		bench_sleep_us(c->end - mmo_mono_us());
	}
	/* Deliveries still in flight: until none came for a second (30 s at most). */
	{
		int64_t t_end = mmo_mono_us(), t_last = t_end;
		uint64_t seen = ~0ull;

		while (mmo_mono_us() - t_last < 1000000 && mmo_mono_us() - t_end < 30000000) {
			bench_ws_counts(ws, &k, NULL, 0);
			if (k.delivered != seen) {
				seen = k.delivered;
				t_last = mmo_mono_us();
			}
			bench_sleep_us(100000);
		}
		m.drained_us = t_last - t_end;
	}
	bench_ws_quiet(ws);
	bench_ws_stop(ws);
	bench_ws_counts(ws, &k, m.why[0] ? NULL : m.why, sizeof(m.why));
	m.subscribed = k.subscribed;
	m.failed = k.failed;
	m.closed = k.closed;
	m.sent = k.sent;
	m.acked = k.acked;
	m.move_errors = k.move_errors;
	m.unacked = k.unacked;
	m.rest_ok = ph->ok;
	m.rest_rejected = ph->rejected;
	m.rest_pending = ph->pending;
	m.rest_limited = ph->limited;
	m.rest_errors = ph->errors;
	snprintf(m.reject_why, sizeof(m.reject_why), "%s", ph->reject_why);
	kid_match(x, ws, ph, &m, dh);
report:
	if (!write_all(x->rep, &m, sizeof(m)) || !write_all(x->rep, dh, sizeof(*dh)) ||
	    !write_all(x->rep, &ph->h, sizeof(ph->h)))
		_exit(1);
	free(ph->acc);
	free(ph);
	free(dh);
}

static _Noreturn void kid_main(const struct kid_ctx *x, pid_t parent)
{
	bench_ws *ws = NULL;
	struct kid_cmd c;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
	if (getppid() != parent)
		_exit(1);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	while (read_all(x->cmd, &c, sizeof(c))) {
		if (c.op == CMD_OPEN && !ws) {
			kid_open(x, &c, &ws);
		} else if (c.op == CMD_MEASURE) {
			kid_measure(x, &c, ws);
			bench_ws_free(ws);
			ws = NULL;
		}
	}
	_exit(0); /* the bench is done with it (sockets close with the process) */
}

/* ------------------------------------------------------------ the bench's side */

int bench_gw_ws_fork(const struct bench_gw_config *cfg, struct player *pl, char *why, size_t wl)
{
	pid_t parent = getpid();

	for (unsigned k = 0; k < cfg->ws_procs && k < PROCS_MAX; k++) {
		struct kid *kd = &kids[k];
		int cp[2], rp[2];
		pid_t pid;

		bench_gw_slice(cfg, k, &kd->first, &kd->n);
		if (bench_gw_pipe(cp)) {
			snprintf(why, wl, "pipe: %s", strerror(errno));
			return -1;
		}
		if (bench_gw_pipe(rp)) {
			snprintf(why, wl, "pipe: %s", strerror(errno));
			bench_gw_fd_close(&cp[0]);
			bench_gw_fd_close(&cp[1]);
			return -1;
		}
		kd->cmd = cp[1];
		kd->rep = rp[0];
		nkids = k + 1;
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			snprintf(why, wl, "fork: %s", strerror(errno));
			bench_gw_fd_close(&cp[0]);
			bench_gw_fd_close(&rp[1]);
			return -1;
		}
		if (pid == 0) {
			struct kid_ctx x = {
			    .cfg = cfg,
			    .pl = pl,
			    .k = k,
			    .first = kd->first,
			    .n = kd->n,
			    .threads = kid_threads(cfg, k),
			    .rest_clients = share(cfg->clients, kd->first, kd->n, cfg->ws_clients),
			    .cmd = cp[0],
			    .rep = rp[1]};

			if (!x.rest_clients)
				x.rest_clients = 1;
			bench_gw_fd_close_kept(cp[0], rp[1]);
			kid_main(&x, parent);
		}
		kid_pid[k] = pid;
		bench_gw_fd_close(&cp[0]);
		bench_gw_fd_close(&rp[1]);
		fprintf(stderr, "bench: ws client process %u pid %d: sockets %u..%u\n", k, (int)pid,
		        kd->first, kd->first + kd->n - 1);
	}
	return 0;
}

void bench_gw_ws_note_limits(void)
{
	for (unsigned k = 0; k < nkids; k++)
		if (kid_pid[k] > 0)
			bench_gw_note_limits("ws client process", k, kid_pid[k]);
}

/* Wait for a report of any client that has not finished what it was
 * told: OPENED when want == MSG_OPENED, RESULT (and its histograms, merged
 * into dh and rh) when MSG_RESULT. -1 with why filled when one is gone. */
static int poll_kids(int want, int timeout_ms, struct bench_hist *dh, struct bench_hist *rh,
                     char *why, size_t wl)
{
	struct pollfd p[PROCS_MAX];
	unsigned who[PROCS_MAX], n = 0;
	int got;

	for (unsigned k = 0; k < nkids; k++) {
		if (want == MSG_OPENED ? kids[k].opened : kids[k].done)
			continue;
		p[n] = (struct pollfd){kids[k].rep, POLLIN, 0};
		who[n++] = k;
	}
	got = poll(p, n, timeout_ms);
	if (got <= 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		struct kid *kd = &kids[who[i]];
		struct kid_msg m;

		if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (!read_all(kd->rep, &m, sizeof(m))) {
			snprintf(why, wl, "ws client process %u (pid %d) ended", who[i],
			         (int)kid_pid[who[i]]);
			return -1;
		}
		if (m.type == MSG_RESULT) {
			struct bench_hist *h = malloc(sizeof(*h));
			bool ok = h && read_all(kd->rep, h, sizeof(*h));

			if (ok)
				bench_hist_merge(dh, h);
			ok = ok && read_all(kd->rep, h, sizeof(*h));
			if (ok)
				bench_hist_merge(rh, h);
			free(h);
			if (!ok) {
				snprintf(why, wl, "ws client process %u: a short report", who[i]);
				return -1;
			}
			kd->res = m;
			kd->done = true;
		} else {
			kd->last = m;
			kd->opened = kd->opened || m.type == MSG_OPENED;
		}
	}
	return 0;
}

static void note_progress(unsigned total)
{
	char line[1024];
	unsigned open = 0, failed = 0;
	size_t o = 0;

	for (unsigned k = 0; k < nkids; k++) {
		open += kids[k].last.subscribed;
		failed += kids[k].last.failed;
		if (o < sizeof(line))
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%sproc %u %u/%u",
			                      k ? ", " : "", k, kids[k].last.subscribed, kids[k].n);
	}
	fprintf(stderr, "bench: ws: %u of %u open (%s), %u failed\n", open, total, line, failed);
}

/* Merge the clients' reports into res and print the run's ws lines. */
static int note_results(const struct bench_gw_config *cfg, unsigned r, int64_t start,
                        const struct bench_hist *dh, const struct bench_hist *rh,
                        struct bench_gw_result *res, char *why, size_t wl)
{
	struct kid_msg t = {0};
	double secs = cfg->duration, drained = 0;
	const char *fwhy = "";

	for (unsigned k = 0; k < nkids; k++) {
		const struct kid_msg *m = &kids[k].res;

		t.closed += m->closed;
		t.sent += m->sent;
		t.acked += m->acked;
		t.move_errors += m->move_errors;
		t.unacked += m->unacked;
		t.moves += m->moves;
		t.matched += m->matched;
		t.expected += m->expected;
		t.missing += m->missing;
		t.dup += m->dup;
		t.foreign += m->foreign;
		t.unmatched += m->unmatched;
		t.rest_ok += m->rest_ok;
		t.rest_rejected += m->rest_rejected;
		t.rest_pending += m->rest_pending;
		t.rest_limited += m->rest_limited;
		t.rest_errors += m->rest_errors;
		t.t_max = m->t_max > t.t_max ? m->t_max : t.t_max;
		drained = fmax(drained, (double)m->drained_us / 1e6);
		if (!fwhy[0] && m->why[0])
			fwhy = m->why;
		if (!t.reject_why[0] && m->reject_why[0])
			snprintf(t.reject_why, sizeof(t.reject_why), "%s", m->reject_why);
		if (nkids > 1)
			printf(
			    "run %u ws proc %u: sockets %u..%u open=%u moves=%llu delivered=%llu "
			    "expected=%llu missing=%llu closed=%u drained_s=%.1f%s%s\n",
			    r, k, kids[k].first, kids[k].first + kids[k].n - 1, m->subscribed,
			    (unsigned long long)m->moves, (unsigned long long)m->matched,
			    (unsigned long long)m->expected, (unsigned long long)m->missing,
			    m->closed, (double)m->drained_us / 1e6, m->why[0] ? " first: " : "",
			    m->why);
	}
	fprintf(stderr, "bench: ws: deliveries drained %.1f s after the last move\n", drained);
	if (!cfg->ws_socket) {
		struct bench_gw_phase *ph = calloc(1, sizeof(*ph));

		if (ph) {
			ph->h = *rh;
			ph->ok = t.rest_ok;
			ph->rejected = t.rest_rejected;
			ph->pending = t.rest_pending;
			ph->limited = t.rest_limited;
			ph->errors = t.rest_errors;
			snprintf(ph->reject_why, sizeof(ph->reject_why), "%s", t.reject_why);
			bench_gw_note_phase("ws_rest_moves", r, ph, secs);
		}
		free(ph);
	}
	res->delivered = t.matched;
	res->expected = t.expected;
	res->missing = t.missing;
	res->ws_rate = (double)t.moves / secs;
	/* Over the moves' time, or to the last delivery if that is later. */
	res->ws_dps = (double)t.matched / fmax(secs, (double)(t.t_max - start) / 1e6);
	res->ws_p50_ms = (double)bench_hist_quantile(dh, 0.50) / 1000.0;
	res->ws_p99_ms = (double)bench_hist_quantile(dh, 0.99) / 1000.0;
	printf("run %u ws: clients=%u moves=%s moves_per_s=%.0f deliveries_per_s=%.0f "
	       "delivered=%llu expected=%llu missing=%llu duplicate=%llu foreign=%llu "
	       "unmatched=%llu closed=%u p50_us=%llu p99_us=%llu\n",
	       r, res->ws_open, cfg->ws_socket ? "socket" : "rest", res->ws_rate, res->ws_dps,
	       (unsigned long long)t.matched, (unsigned long long)t.expected,
	       (unsigned long long)t.missing, (unsigned long long)t.dup,
	       (unsigned long long)t.foreign, (unsigned long long)t.unmatched, t.closed,
	       (unsigned long long)bench_hist_quantile(dh, 0.50),
	       (unsigned long long)bench_hist_quantile(dh, 0.99));
	if (cfg->ws_socket)
		printf(
		    "run %u ws: socket moves sent=%llu acked=%llu errors=%llu unacked=%llu%s%s\n",
		    r, (unsigned long long)t.sent, (unsigned long long)t.acked,
		    (unsigned long long)t.move_errors, (unsigned long long)t.unacked,
		    fwhy[0] ? " first failure: " : "", fwhy);
	if (t.missing)
		printf("run %u ws: WARNING: %llu expected deliveries are missing\n", r,
		       (unsigned long long)t.missing);
	if (!t.matched) {
		snprintf(why, wl, "no move was delivered to a WebSocket%s%s", fwhy[0] ? ": " : "",
		         fwhy);
		return -1;
	}
	return 0;
}

int bench_gw_ws_phase(const struct bench_gw_config *cfg, struct bench_gw_sut *sut, unsigned r,
                      struct bench_gw_result *res, char *why, size_t wl)
{
	struct kid_cmd c = {.op = CMD_OPEN, .nports = sut->n};
	struct bench_hist *dh = calloc(1, sizeof(*dh)), *rh = calloc(1, sizeof(*rh));
	struct bench_gw_stages st0, st1;
	unsigned open = 0, failed = 0, nopen = 0, ndone = 0, threads = 0;
	int64_t t0, last, start, end, deadline;
	double cpu_kids = 0, cpu_srv = 0, cpu_backend = 0;
	const char *fwhy = "";
	int rc = -1;

	if (!dh || !rh) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < sut->n && i < BENCH_WS_PORTS_MAX; i++)
		c.ports[i] = sut->port[i];
	for (unsigned k = 0; k < nkids; k++)
		threads += kid_threads(cfg, k);
	fprintf(stderr,
	        "bench: run %u: opening %u WebSockets from %u client process%s (%u epoll "
	        "threads) to %u gateway%s\n",
	        r, cfg->ws_clients, nkids, nkids == 1 ? "" : "es", threads, sut->n,
	        sut->n == 1 ? "" : "s");
	for (unsigned k = 0; k < nkids; k++) {
		memset(&kids[k].last, 0, sizeof(kids[k].last));
		memset(&kids[k].res, 0, sizeof(kids[k].res));
		kids[k].opened = kids[k].done = false;
		if (!write_all(kids[k].cmd, &c, sizeof(c))) {
			snprintf(why, wl, "ws client process %u: %s", k, strerror(errno));
			goto out;
		}
	}
	t0 = last = mmo_mono_us();
	deadline = t0 + 90000000 + (int64_t)cfg->ws_clients * 5000;
	while (nopen < nkids) {
		if (bench_gw_interrupted || mmo_mono_us() > deadline) {
			snprintf(why, wl, "the WebSockets did not open in time");
			goto out;
		}
		if (poll_kids(MSG_OPENED, 200, dh, rh, why, wl))
			goto out;
		nopen = 0;
		for (unsigned k = 0; k < nkids; k++)
			nopen += kids[k].opened;
		if (mmo_mono_us() - last >= 1000000) {
			last = mmo_mono_us();
			note_progress(cfg->ws_clients);
		}
		bench_gw_sut_sample(sut);
		if (bench_gw_sut_check(sut, why, wl))
			goto out;
	}
	for (unsigned k = 0; k < nkids; k++) {
		open += kids[k].last.subscribed;
		failed += kids[k].last.failed;
		if (!fwhy[0] && kids[k].last.why[0])
			fwhy = kids[k].last.why;
	}
	res->ws_open = open;
	bench_gw_sut_sample(sut);
	note_progress(cfg->ws_clients);
	{
		long kb = 0;

		for (unsigned i = 0; i < sut->n; i++)
			kb += sut->peak_kb[i];
		fprintf(
		    stderr,
		    "bench: ws: %u open and subscribed, %u failed%s%s in %.1f s; peak rss %ld MB "
		    "(backend and gateways)\n",
		    open, failed, fwhy[0] ? " - first: " : "", fwhy,
		    (double)(mmo_mono_us() - t0) / 1e6, kb / 1024);
	}
	if (!open) {
		snprintf(why, wl, "no WebSocket could be opened: %s", fwhy);
		goto out;
	}
	fprintf(stderr, "bench: run %u: %u moves/s offered %s for %u s to %u WebSockets\n", r,
	        cfg->ws_rate, cfg->ws_socket ? "over the sockets" : "as REST moves", cfg->duration,
	        open);
	start = mmo_mono_us() + 200000;
	end = start + (int64_t)cfg->duration * 1000000;
	bench_gw_read_stages(sut->port, sut->n, &st0);
	for (unsigned k = 0; k < nkids; k++)
		cpu_kids -= bench_gw_pid_cpu_s(kid_pid[k]);
	cpu_backend = bench_gw_pid_cpu_s(sut->pid[0]);
	cpu_srv = bench_gw_sut_cpu_s(sut);
	c.op = CMD_MEASURE;
	c.start = start;
	c.end = end;
	for (unsigned k = 0; k < nkids; k++) {
		c.rate = share(cfg->ws_rate, kids[k].first, kids[k].n, cfg->ws_clients);
		if (!write_all(kids[k].cmd, &c, sizeof(c))) {
			snprintf(why, wl, "ws client process %u: %s", k, strerror(errno));
			goto out;
		}
	}
	deadline = end + 120000000; /* the drain takes 30 s at most */
	while (ndone < nkids) {
		if (bench_gw_interrupted || mmo_mono_us() > deadline) {
			snprintf(why, wl, "the client processes did not report in time");
			goto out;
		}
		if (poll_kids(MSG_RESULT, 200, dh, rh, why, wl))
			goto out;
		ndone = 0;
		for (unsigned k = 0; k < nkids; k++)
			ndone += kids[k].done;
		bench_gw_sut_sample(sut);
		if (bench_gw_sut_check(sut, why, wl))
			goto out;
	}
	bench_gw_read_stages(sut->port, sut->n, &st1);
	for (unsigned k = 0; k < nkids; k++)
		cpu_kids += bench_gw_pid_cpu_s(kid_pid[k]);
	cpu_backend = bench_gw_pid_cpu_s(sut->pid[0]) - cpu_backend;
	cpu_srv = bench_gw_sut_cpu_s(sut) - cpu_srv;
	if (note_results(cfg, r, start, dh, rh, res, why, wl))
		goto out;
	printf("run %u ws: cpu_s clients=%.1f backend=%.1f other_gateways=%.1f over %.1f s "
	       "(moves and drain)\n",
	       r, cpu_kids, cpu_backend, cpu_srv - cpu_backend,
	       (double)(mmo_mono_us() - start) / 1e6);
	bench_gw_note_stages(r, "ws", &st0, &st1);
	fflush(stdout);
	rc = 0;
out:
	free(dh);
	free(rh);
	return rc;
}

void bench_gw_ws_stop(void)
{
	int64_t until;
	int status;

	for (unsigned k = 0; k < nkids; k++)
		bench_gw_fd_close(&kids[k].cmd); /* end of file: it exits */
	for (int pass = 0; pass < 3; pass++) {
		until = mmo_mono_us() + (pass == 0 ? 3000000 : 2000000);
		for (;;) {
			unsigned left = 0;

			for (unsigned k = 0; k < nkids; k++) {
				if (kid_pid[k] > 0 &&
				    waitpid(kid_pid[k], &status, WNOHANG) == kid_pid[k])
					kid_pid[k] = 0;
				left += kid_pid[k] > 0;
			}
			if (!left || mmo_mono_us() > until)
				break;
			bench_sleep_us(10000);
		}
		for (unsigned k = 0; k < nkids; k++)
			if (kid_pid[k] > 0)
				kill(kid_pid[k], pass == 0 ? SIGTERM : SIGKILL);
	}
	for (unsigned k = 0; k < nkids; k++) {
		if (kid_pid[k] > 0)
			waitpid(kid_pid[k], &status, 0);
		kid_pid[k] = 0;
		bench_gw_fd_close(&kids[k].rep);
	}
	nkids = 0;
}

void bench_gw_ws_kill(void)
{
	for (unsigned k = 0; k < PROCS_MAX; k++)
		if (kid_pid[k] > 0)
			kill(kid_pid[k], SIGKILL);
}
