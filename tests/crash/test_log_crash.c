/* test_crash.c - durability of the log under kill -9.
 *
 * Each round runs `mmo serve --roles log` on one data folder that grows
 * from round to round, loads it from several pipelined producers, then
 * kills it at a reproducible random point (20..400 ms, from a fixed seed)
 * and proves, from the test process:
 *   1. reopened read-only, every acked event_id is found at exactly its acked
 *      seq and that record holds the very bytes sent; the seqs are 1..head
 *      with no gap; no event_id is stored twice; the chain and the indexes
 *      verify;
 *   2. after a restart, re-sending every event the round attempted (acked or
 *      not) returns the acked seq for acked ones, the committed seq for
 *      events committed without ack, and fresh seqs head+1.. for the rest;
 *      the log then holds exactly one record per distinct event_id ever sent;
 *   3. the chain and the indexes verify again.
 * Round kinds: kill -9 under load (MMO_CRASH_ROUNDS of them, default 12),
 * SIGTERM followed 5 ms later by kill -9, and a clean SIGTERM (exit 0 and
 * the "stopped:" line). MMO_CRASH_SEED changes the kill points.
 *
 * The producers only count; every assertion runs on the main thread after
 * they are joined (cmocka cannot fail from another thread).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"

#define KILL_ROUNDS_DEFAULT 12
#define KILL_ROUNDS_MAX     64
#define ROUNDS_MAX          (KILL_ROUNDS_MAX + 2)
#define SEED_DEFAULT        0x6d6d6f2d6372ULL /* "mmo-cr" */
#define PRODUCERS           4
#define WINDOW              32  /* requests in flight per producer */
#define REQ_EVENTS_MAX      8   /* events per load request: 1..8 */
#define CLIENT_TIMEOUT_MS   500 /* a producer gives up on a silent server */
#define RESEND_BATCH        256 /* events per re-send request */
#define RESEND_TIMEOUT_MS   20000
#define READY_TIMEOUT_MS    20000
#define EV_BUF              512 /* one encoded test event fits easily */

enum round_kind {
	KILL,      /* kill -9 under load */
	TERM_KILL, /* SIGTERM, then kill -9 5 ms later, under load */
	TERM,      /* clean SIGTERM under load: exit 0 */
};

/* What one producer thread did in one round: event n of (round, thread) is
 * "crash-<round>-<thread>-<n>", attempted for n < count. */
struct tdata {
	uint32_t count, cap;
	uint64_t *acked; /* seq from the load-phase ack, 0 if none */
	uint64_t *inlog; /* seq found by the latest scan of the log, 0 if absent */
	uint64_t *final; /* seq after the re-send (the truth from then on) */
};

struct round {
	int no;
	enum round_kind kind;
	int delay_ms;
	struct tdata t[PRODUCERS];
};

struct server {
	pid_t pid;
	char ingest[64];
	char logf[4200];
};

struct crash {
	char dir[4096]; /* data folder: the log is dir/log */
	char logdir[4200];
	void *zctx;
	struct server srv;
	int nstarts;
	bool broken;      /* a round failed: the rest are skipped */
	evlog *ro;        /* the log opened read-only by a check, if any */
	evlog_client *rc; /* the re-send client, if any */
	int nrounds;
	uint64_t seed;
	int64_t t0;
	struct round rounds[ROUNDS_MAX];
};

static struct crash C;

/* ------------------------------------------------------------ helpers */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void tdata_reserve(struct tdata *d, uint32_t need)
{
	uint32_t cap = d->cap ? d->cap : 1024;

	if (need <= d->cap)
		return;
	while (cap < need)
		cap *= 2;
	d->acked = realloc(d->acked, cap * sizeof(*d->acked));
	d->inlog = realloc(d->inlog, cap * sizeof(*d->inlog));
	d->final = realloc(d->final, cap * sizeof(*d->final));
	if (!d->acked || !d->inlog || !d->final)
		abort(); /* test process out of memory: nothing sensible to do */
	memset(d->acked + d->cap, 0, (cap - d->cap) * sizeof(*d->acked));
	memset(d->inlog + d->cap, 0, (cap - d->cap) * sizeof(*d->inlog));
	memset(d->final + d->cap, 0, (cap - d->cap) * sizeof(*d->final));
	d->cap = cap;
}

/* Event n of producer t in round r: a valid player.move whose player and
 * region vary. Deterministic, so a re-send has the very same bytes. */
static int make_event(int r, int t, uint32_t n, uint8_t *buf, size_t cap, size_t *len)
{
	char id[MMO_ID_MAX + 1], player[32], region[32];
	struct mmo_ev b;
	int err;

	snprintf(id, sizeof(id), "crash-%d-%d-%" PRIu32, r, t, n);
	snprintf(player, sizeof(player), "pl-%d-%" PRIu32, t, (n * 7 + (uint32_t)r) % 23);
	snprintf(region, sizeof(region), "rg-%" PRIu32, (n + (uint32_t)t * 3) % 6);
	err = mmo_ev_init(&b, "player.move", id, player, region);
	if (err)
		return err;
	mmo_ev_set_pos(&b, (double)n * 0.5, (double)t - 1.25, (double)r * 2.0);
	return mmo_event_encode(&b.ev, buf, cap, len);
}

/* Parse "crash-R-T-N"; false for anything else. */
static bool parse_id(const char *id, int *r, int *t, uint32_t *n)
{
	unsigned ur, ut, un;
	int end = 0;

	if (sscanf(id, "crash-%u-%u-%u%n", &ur, &ut, &un, &end) != 3 || id[end])
		return false;
	*r = (int)ur;
	*t = (int)ut;
	*n = un;
	return true;
}

static double since_s(int64_t t0)
{
	return (double)(mmo_mono_us() - t0) / 1e6;
}

/* ------------------------------------------------------------ server */

static pid_t spawn_server(int *ingest_port)
{
	char bus[64], datadir[4096];
	int ip = ts_free_port(), bp;

	do
		bp = ts_free_port();
	while (bp == ip && bp > 0);
	if (ip <= 0 || bp <= 0)
		return -1;
	*ingest_port = ip;
	snprintf(C.srv.ingest, sizeof(C.srv.ingest), "tcp://127.0.0.1:%d", ip);
	snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%d", bp);
	snprintf(datadir, sizeof(datadir), "%s", C.dir);
	snprintf(C.srv.logf, sizeof(C.srv.logf), "%s/serve-%02d.log", C.dir, C.nstarts++);
	char *argv[] = {
	    (char *)ts_mmo_bin(), "serve",      "--roles", "log", "--data", datadir,
	    "--ingest",           C.srv.ingest, "--bus",   bus,   NULL,
	};
	return ts_spawn(argv, C.srv.logf);
}

/* Start the server on the data folder and wait for its ready line, which
 * must report the expected head. Retries on fresh ports if it died (a port
 * taken between ts_free_port() and bind). */
static void server_start(uint64_t expect_head)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "head_seq=%" PRIu64 " ", expect_head);
	for (int attempt = 0; attempt < 3; attempt++) {
		int port, status;
		pid_t pid = spawn_server(&port);

		assert_true(pid > 0);
		for (int waited = 0; waited < READY_TIMEOUT_MS; waited += 20) {
			if (ts_wait_log(C.srv.logf, "ready:", 0)) {
				C.srv.pid = pid;
				if (!ts_wait_log(C.srv.logf, needle, 0))
					fail_msg("server %s: ready line does not say %s",
					         C.srv.logf, needle);
				return;
			}
			if (waitpid(pid, &status, WNOHANG) == pid) {
				pid = -1;
				break;
			}
			usleep(20 * 1000);
		}
		if (pid > 0) {
			ts_stop(pid, SIGKILL, 1000);
			fail_msg("server did not get ready in %d ms (see %s)", READY_TIMEOUT_MS,
			         C.srv.logf);
		}
		fprintf(stderr, "  server exited before ready (see %s); retrying\n", C.srv.logf);
	}
	fail_msg("server could not start 3 times (see %s)", C.srv.logf);
}

/* ------------------------------------------------------------ producers */

struct slot {
	bool used;
	uint32_t id;
	uint32_t first; /* n of its first event */
	uint32_t n;
};

struct producer {
	pthread_t thread;
	int round, idx;
	struct tdata *d;
	atomic_bool *stop;
	uint64_t rng;
	/* Outcomes, read after the join. */
	int open_err;
	uint64_t requests, acked, busy, unanswered;
	uint64_t bad_status, bad_event, bad_reply, send_err, recv_err, stray;
	int first_bad; /* first unexpected error code */
};

static void note_bad(struct producer *p, uint64_t *counter, int code)
{
	(*counter)++;
	if (!p->first_bad)
		p->first_bad = code ? code : -1;
}

static void on_reply(struct producer *p, struct slot *slots, uint32_t id, int status,
                     const uint64_t *seqs, const int *errs, size_t n)
{
	struct slot *s = NULL;

	for (int i = 0; i < WINDOW; i++) {
		if (slots[i].used && slots[i].id == id)
			s = &slots[i];
	}
	if (!s) {
		p->stray++;
		return;
	}
	if (status == MMO_EBUSY) {
		p->busy++;
	} else if (status) {
		note_bad(p, &p->bad_status, status);
	} else if (n != s->n) {
		note_bad(p, &p->bad_reply, 0);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (errs[i])
				note_bad(p, &p->bad_event, errs[i]);
			else if (seqs[i] == 0)
				note_bad(p, &p->bad_reply, 0);
			else {
				p->d->acked[s->first + i] = seqs[i];
				p->acked++;
			}
		}
	}
	s->used = false;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct tdata *d = p->d;
	struct slot slots[WINDOW] = {{0}};
	uint8_t bufs[REQ_EVENTS_MAX][EV_BUF];
	struct evlog_in in[REQ_EVENTS_MAX];
	uint64_t seqs[REQ_EVENTS_MAX];
	int errs[REQ_EVENTS_MAX];
	unsigned inflight = 0;
	uint32_t next_id = 1;
	evlog_client *c = NULL;

	p->open_err = evlog_client_open(C.zctx, C.srv.ingest, CLIENT_TIMEOUT_MS, &c);
	if (p->open_err)
		return NULL;
	for (;;) {
		bool stop = atomic_load(p->stop);

		while (!stop && inflight < WINDOW) {
			uint32_t k = 1 + (uint32_t)(splitmix(&p->rng) % REQ_EVENTS_MAX);
			uint32_t first = d->count;
			int slot = 0, err = 0;

			tdata_reserve(d, first + k);
			for (uint32_t i = 0; i < k && !err; i++) {
				err = make_event(p->round, p->idx, first + i, bufs[i], EV_BUF,
				                 &in[i].len);
				in[i].buf = bufs[i];
				in[i].priority = 0;
			}
			if (err) {
				note_bad(p, &p->send_err, err);
				stop = true;
				break;
			}
			/* Attempted from here on, whatever the send says. */
			d->count = first + k;
			err = evlog_client_send(c, next_id, in, k);
			if (err) {
				note_bad(p, &p->send_err, err);
				break;
			}
			while (slots[slot].used)
				slot++;
			slots[slot] = (struct slot){true, next_id++, first, k};
			inflight++;
			p->requests++;
		}
		if (!inflight) {
			if (stop)
				break;
			usleep(1000);
			continue;
		}
		uint32_t id;
		int status, err;
		size_t n = 0;

		err = evlog_client_recv(c, stop ? CLIENT_TIMEOUT_MS : 50, &id, &status, seqs, errs,
		                        REQ_EVENTS_MAX, &n);
		if (err == MMO_ETIMEOUT) {
			if (stop)
				break; /* the server is gone: the rest stays unanswered */
			continue;
		}
		if (err) {
			/* A reply that does not parse: the request stays unanswered. */
			note_bad(p, &p->recv_err, err);
			if (stop)
				break;
			continue;
		}
		on_reply(p, slots, id, status, seqs, errs, n);
		inflight--;
	}
	p->unanswered = inflight;
	evlog_client_close(c);
	return NULL;
}

/* ------------------------------------------------------------ checks */

/* Open the log read-only from the test process. */
static evlog *log_open_ro(void)
{
	struct evlog_opts o = {.dir = C.logdir, .readonly = true};
	char msg[256] = "";
	evlog *l = NULL;
	int err = evlog_open(&o, &l, msg, sizeof(msg));

	if (err)
		fail_msg("evlog_open(%s, readonly): %s: %s", C.logdir, mmo_strerror(err), msg);
	C.ro = l;
	return l;
}

static void log_close_ro(void)
{
	evlog_close(C.ro);
	C.ro = NULL;
}

static void verify_log(evlog *l, uint64_t head)
{
	struct evlog_verify_result res;
	int err;

	memset(&res, 0, sizeof(res));
	err = evlog_verify(l, 1, 0, NULL, true, NULL, NULL, &res);
	if (err != MMO_OK)
		fail_msg("evlog_verify: %s at seq %" PRIu64 ": %s", mmo_strerror(err), res.bad_seq,
		         res.what);
	assert_int_equal(res.checked, head);
}

/* Scan every record of the log: seqs 1..head with no gap, each record one of
 * ours (rounds 0..upto) with exactly the bytes we send, no event_id twice.
 * Fills inlog[] of every event of those rounds. Returns the head. */
static uint64_t scan_log(evlog *l, int upto)
{
	uint8_t want[EV_BUF];
	struct evlog_rec rec;
	evlog_iter *it = NULL;
	uint64_t head = 0, expect = 1;
	int err;

	for (int r = 0; r <= upto; r++) {
		for (int t = 0; t < PRODUCERS; t++) {
			struct tdata *d = &C.rounds[r].t[t];

			if (d->cap)
				memset(d->inlog, 0, d->cap * sizeof(*d->inlog));
		}
	}
	assert_int_equal(evlog_head(l, &head, NULL), MMO_OK);
	assert_int_equal(evlog_iter_open(l, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	while ((err = evlog_iter_next(it, &rec)) == MMO_OK) {
		Mmo__Event *ev = NULL;
		uint32_t n = 0;
		size_t len;
		int r = 0, t = 0;

		if (rec.seq != expect) {
			evlog_iter_close(it);
			fail_msg("gap: seq %" PRIu64 " follows %" PRIu64, rec.seq, expect - 1);
		}
		expect++;
		if (evlog_rec_decode(&rec, &ev) != MMO_OK) {
			evlog_iter_close(it);
			fail_msg("seq %" PRIu64 " does not decode", rec.seq);
		}
		if (!parse_id(ev->event_id, &r, &t, &n) || r < 0 || r > upto || t < 0 ||
		    t >= PRODUCERS || n >= C.rounds[r].t[t].count) {
			evlog_iter_close(it);
			fail_msg("seq %" PRIu64 " holds '%s', never sent", rec.seq, ev->event_id);
		}
		mmo_event_free(ev);
		struct tdata *d = &C.rounds[r].t[t];
		if (d->inlog[n]) {
			evlog_iter_close(it);
			fail_msg("crash-%d-%d-%" PRIu32 " stored twice: seq %" PRIu64
			         " and %" PRIu64,
			         r, t, n, d->inlog[n], rec.seq);
		}
		d->inlog[n] = rec.seq;
		if (make_event(r, t, n, want, sizeof(want), &len) != MMO_OK ||
		    len != rec.event_len || memcmp(want, rec.event, len) != 0) {
			evlog_iter_close(it);
			fail_msg("seq %" PRIu64 ": bytes differ from what was sent", rec.seq);
		}
	}
	evlog_iter_close(it);
	assert_int_equal(err, MMO_ENOTFOUND);
	assert_int_equal(expect - 1, head);
	return head;
}

/* The event at seq is event_id, read straight by seq (not through the scan). */
static void check_at(evlog *l, uint64_t seq, const char *event_id)
{
	uint8_t raw[EVLOG_HDR_LEN + EV_BUF];
	struct evlog_rec rec;
	Mmo__Event *ev = NULL;
	size_t len = 0;

	assert_int_equal(evlog_get(l, seq, raw, sizeof(raw), &len), MMO_OK);
	assert_int_equal(evlog_rec_parse(seq, raw, len, &rec), MMO_OK);
	assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
	if (strcmp(ev->event_id, event_id)) {
		char got[MMO_ID_MAX + 1];

		snprintf(got, sizeof(got), "%s", ev->event_id);
		mmo_event_free(ev);
		fail_msg("seq %" PRIu64 " holds %s, acked for %s", seq, got, event_id);
	}
	mmo_event_free(ev);
}

/* Every earlier round's events are where the re-send put them. */
static void check_earlier(int no)
{
	for (int r = 0; r < no; r++) {
		for (int t = 0; t < PRODUCERS; t++) {
			struct tdata *d = &C.rounds[r].t[t];

			for (uint32_t n = 0; n < d->count; n++) {
				if (d->inlog[n] != d->final[n])
					fail_msg("crash-%d-%d-%" PRIu32 " moved: seq %" PRIu64
					         " now %" PRIu64,
					         r, t, n, d->final[n], d->inlog[n]);
			}
		}
	}
}

static uint64_t events_through(int no)
{
	uint64_t total = 0;

	for (int r = 0; r <= no; r++) {
		for (int t = 0; t < PRODUCERS; t++)
			total += C.rounds[r].t[t].count;
	}
	return total;
}

/* ------------------------------------------------------------ re-send */

struct resend {
	struct round *rd;
	evlog_client *c;
	uint64_t head;  /* head before the re-send */
	uint64_t total; /* events the round attempted */
	uint8_t *fresh_seen;
	uint64_t fresh_max;
	/* Outcomes. */
	uint64_t same_acked;   /* acked at load: the same seq again */
	uint64_t same_unacked; /* committed without an ack: its seq */
	uint64_t fresh;        /* never committed: a new seq */
	/* The batch being built. */
	size_t k;
	struct evlog_in in[RESEND_BATCH];
	uint8_t bufs[RESEND_BATCH][EV_BUF];
	int who_t[RESEND_BATCH];
	uint32_t who_n[RESEND_BATCH];
};

static struct resend resend_state;

/* Send the batch and check each answer against the load phase and the scan. */
static void resend_flush(struct resend *rs)
{
	uint64_t seqs[RESEND_BATCH];
	int errs[RESEND_BATCH];
	int err;

	if (!rs->k)
		return;
	err = evlog_client_append(rs->c, rs->in, rs->k, seqs, errs);
	if (err)
		fail_msg("re-send of %zu events: %s", rs->k, mmo_strerror(err));
	for (size_t i = 0; i < rs->k; i++) {
		struct tdata *d = &rs->rd->t[rs->who_t[i]];
		uint32_t n = rs->who_n[i];
		uint64_t s = seqs[i];
		char id[MMO_ID_MAX + 1];

		snprintf(id, sizeof(id), "crash-%d-%d-%" PRIu32, rs->rd->no, rs->who_t[i], n);
		if (errs[i])
			fail_msg("re-send %s: %s", id, mmo_strerror(errs[i]));
		if (d->acked[n]) {
			if (s != d->acked[n])
				fail_msg("re-send %s: seq %" PRIu64 ", acked %" PRIu64, id, s,
				         d->acked[n]);
			rs->same_acked++;
		} else if (d->inlog[n]) {
			if (s != d->inlog[n])
				fail_msg("re-send %s: seq %" PRIu64 ", logged at %" PRIu64, id, s,
				         d->inlog[n]);
			rs->same_unacked++;
		} else {
			if (s <= rs->head || s > rs->head + rs->total ||
			    rs->fresh_seen[s - rs->head])
				fail_msg("re-send %s: seq %" PRIu64 " is not new and unique "
				         "(head was %" PRIu64 ")",
				         id, s, rs->head);
			rs->fresh_seen[s - rs->head] = 1;
			if (s > rs->fresh_max)
				rs->fresh_max = s;
			rs->fresh++;
		}
		d->final[n] = s;
	}
	rs->k = 0;
}

/* Re-send every event round rd attempted, acked or not. */
static void resend_round(struct resend *rs, struct round *rd, uint64_t head)
{
	uint64_t now = 0;

	free(rs->fresh_seen); /* left by a failed round */
	memset(rs, 0, sizeof(*rs));
	rs->rd = rd;
	rs->head = head;
	for (int t = 0; t < PRODUCERS; t++)
		rs->total += rd->t[t].count;
	rs->fresh_seen = calloc(rs->total + 1, 1);
	assert_non_null(rs->fresh_seen);
	assert_int_equal(evlog_client_open(C.zctx, C.srv.ingest, RESEND_TIMEOUT_MS, &C.rc), MMO_OK);
	rs->c = C.rc;
	for (int t = 0; t < PRODUCERS; t++) {
		for (uint32_t n = 0; n < rd->t[t].count; n++) {
			size_t len;

			assert_int_equal(make_event(rd->no, t, n, rs->bufs[rs->k], EV_BUF, &len),
			                 MMO_OK);
			rs->in[rs->k] = (struct evlog_in){rs->bufs[rs->k], len, 0};
			rs->who_t[rs->k] = t;
			rs->who_n[rs->k] = n;
			if (++rs->k == RESEND_BATCH)
				resend_flush(rs);
		}
	}
	resend_flush(rs);
	/* The fresh seqs are exactly head+1 .. head+fresh. */
	if (rs->fresh)
		assert_int_equal(rs->fresh_max, head + rs->fresh);
	assert_int_equal(evlog_client_head(rs->c, &now), MMO_OK);
	assert_int_equal(now, head + rs->fresh);
	evlog_client_close(C.rc);
	C.rc = NULL;
	rs->c = NULL;
	free(rs->fresh_seen);
	rs->fresh_seen = NULL;
}

/* ------------------------------------------------------------ a round */

static const char *kind_name(enum round_kind k)
{
	return k == KILL ? "kill -9" : k == TERM_KILL ? "SIGTERM+kill -9" : "SIGTERM";
}

/* Run the producers against the running server, stop it the round's way
 * after its delay, and join them. Returns the stop status. */
static int load_and_stop(struct round *rd, struct producer *p)
{
	atomic_bool stop = false;
	int status;

	for (int t = 0; t < PRODUCERS; t++) {
		p[t] = (struct producer){.round = rd->no, .idx = t, .d = &rd->t[t], .stop = &stop};
		p[t].rng = C.seed ^ ((uint64_t)rd->no << 32) ^ (uint64_t)t;
		splitmix(&p[t].rng);
		if (pthread_create(&p[t].thread, NULL, producer_main, &p[t]) != 0)
			abort(); /* cannot run the test at all */
	}
	usleep((useconds_t)rd->delay_ms * 1000);
	switch (rd->kind) {
	case KILL: status = ts_stop(C.srv.pid, SIGKILL, 5000); break;
	case TERM_KILL:
		kill(C.srv.pid, SIGTERM);
		usleep(5000);
		status = ts_stop(C.srv.pid, SIGKILL, 5000);
		break;
	default: status = ts_stop(C.srv.pid, SIGTERM, 30000); break;
	}
	C.srv.pid = 0;
	atomic_store(&stop, true);
	for (int t = 0; t < PRODUCERS; t++)
		pthread_join(p[t].thread, NULL);
	return status;
}

static void test_round(void **state)
{
	struct round *rd = *state;
	struct producer p[PRODUCERS];
	struct resend *rs = &resend_state;
	uint64_t head0, head, acked = 0, requests = 0, busy = 0, unanswered = 0, attempted = 0;
	uint64_t unacked_in = 0, max_acked = 0;
	int64_t t0 = mmo_mono_us();
	evlog *l;
	int status;

	if (C.broken)
		skip();
	C.broken = true; /* until this round gets to its end */
	head0 = events_through(rd->no - 1);
	if (!C.srv.pid)
		server_start(head0);

	status = load_and_stop(rd, p);
	for (int t = 0; t < PRODUCERS; t++) {
		if (p[t].open_err)
			fail_msg("producer %d: client open: %s", t, mmo_strerror(p[t].open_err));
		if (p[t].bad_status || p[t].bad_event || p[t].bad_reply || p[t].send_err ||
		    p[t].recv_err || p[t].stray)
			fail_msg("producer %d: %" PRIu64 " bad statuses, %" PRIu64
			         " refused events, %" PRIu64 " bad replies, %" PRIu64
			         " send errors, %" PRIu64 " receive errors, %" PRIu64
			         " stray replies (first: %d %s)",
			         t, p[t].bad_status, p[t].bad_event, p[t].bad_reply, p[t].send_err,
			         p[t].recv_err, p[t].stray, p[t].first_bad,
			         p[t].first_bad > 0 ? mmo_strerror(p[t].first_bad) : "");
		acked += p[t].acked;
		requests += p[t].requests;
		busy += p[t].busy;
		unanswered += p[t].unanswered;
		attempted += rd->t[t].count;
	}
	const char *how = WIFSIGNALED(status) ? "killed" : "exited";
	switch (rd->kind) {
	case KILL:
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		break;
	case TERM_KILL:
		/* Killed mid-shutdown, or the shutdown won the 5 ms race. */
		assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
		            (WIFEXITED(status) && WEXITSTATUS(status) == 0));
		break;
	default:
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_true(ts_wait_log(C.srv.logf, "stopped:", 0));
		break;
	}

	/* 1. Reopened read-only: every ack holds, no gap, no duplicate, chain ok. */
	l = log_open_ro();
	head = scan_log(l, rd->no);
	check_earlier(rd->no);
	for (int t = 0; t < PRODUCERS; t++) {
		struct tdata *d = &rd->t[t];

		for (uint32_t n = 0; n < d->count; n++) {
			char id[MMO_ID_MAX + 1];
			uint64_t seq = 0;

			snprintf(id, sizeof(id), "crash-%d-%d-%" PRIu32, rd->no, t, n);
			if (!d->acked[n]) {
				unacked_in += d->inlog[n] != 0;
				continue;
			}
			if (d->acked[n] <= head0)
				fail_msg("%s acked with seq %" PRIu64
				         ", not after the old head %" PRIu64,
				         id, d->acked[n], head0);
			if (max_acked < d->acked[n])
				max_acked = d->acked[n];
			int err = evlog_find_id(l, id, &seq);
			if (err)
				fail_msg("%s acked with seq %" PRIu64
				         " but lost after the crash: %s",
				         id, d->acked[n], mmo_strerror(err));
			if (seq != d->acked[n])
				fail_msg("%s acked with seq %" PRIu64
				         " but the log has it at %" PRIu64,
				         id, d->acked[n], seq);
			assert_int_equal(d->inlog[n], seq);
			check_at(l, seq, id);
		}
	}
	assert_true(head >= head0 && head >= max_acked);
	verify_log(l, head);
	log_close_ro();
	if (rd->kind == TERM) {
		char needle[64];

		snprintf(needle, sizeof(needle), "stopped: head_seq=%" PRIu64 "\n", head);
		if (!ts_wait_log(C.srv.logf, needle, 0))
			fail_msg("%s does not say '%s'", C.srv.logf, "stopped: head_seq=<head>");
	}
	printf("[ round %2d ] %-15s after %3d ms (%s): %" PRIu64 " requests, %" PRIu64
	       " events attempted, %" PRIu64 " acked, %" PRIu64 " busy, %" PRIu64
	       " requests unanswered; head %" PRIu64 " -> %" PRIu64 " (%" PRIu64
	       " committed without ack)\n",
	       rd->no, kind_name(rd->kind), rd->delay_ms, how, requests, attempted, acked, busy,
	       unanswered, head0, head, unacked_in);
	assert_int_equal(head - head0, acked + unacked_in);

	/* 2. Restart, re-send everything: same seqs, fresh ones contiguous. */
	server_start(head);
	resend_round(rs, rd, head);
	assert_int_equal(rs->same_acked, acked);
	assert_int_equal(rs->same_unacked, unacked_in);
	assert_int_equal(rs->same_acked + rs->same_unacked + rs->fresh, attempted);

	/* 3. One record per distinct event_id ever sent; verify again. */
	l = log_open_ro();
	uint64_t head2 = scan_log(l, rd->no);
	assert_int_equal(head2, events_through(rd->no));
	assert_int_equal(head2, head + rs->fresh);
	for (int r = 0; r <= rd->no; r++) {
		for (int t = 0; t < PRODUCERS; t++) {
			struct tdata *d = &C.rounds[r].t[t];

			for (uint32_t n = 0; n < d->count; n++) {
				if (d->inlog[n] != d->final[n])
					fail_msg("crash-%d-%d-%" PRIu32 " re-sent as seq %" PRIu64
					         " but logged at %" PRIu64,
					         r, t, n, d->final[n], d->inlog[n]);
			}
		}
	}
	verify_log(l, head2);
	log_close_ro();
	printf("[ round %2d ] re-send of %" PRIu64 ": %" PRIu64 " same acked seq, %" PRIu64
	       " same unacked seq, %" PRIu64 " fresh; head %" PRIu64 " verified (%.1f s, total "
	       "%.1f s)\n",
	       rd->no, attempted, rs->same_acked, rs->same_unacked, rs->fresh, head2, since_s(t0),
	       since_s(C.t0));
	fflush(stdout);
	C.broken = false;
}

/* ------------------------------------------------------------ the table */

static int group_setup(void **state)
{
	if (ts_tmpdir(C.dir, sizeof(C.dir)) != 0)
		return -1;
	snprintf(C.logdir, sizeof(C.logdir), "%s/log", C.dir);
	C.zctx = zmq_ctx_new();
	if (!C.zctx)
		return -1;
	C.t0 = mmo_mono_us();
	printf("crash: seed %#" PRIx64 ", %d rounds, data %s, binary %s\n", C.seed, C.nrounds,
	       C.dir, ts_mmo_bin());
	fflush(stdout);
	return 0;
}

static int group_teardown(void **state)
{
	bool ok = !C.broken;

	if (C.srv.pid > 0) {
		int status = ts_stop(C.srv.pid, SIGTERM, 30000);

		ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
		C.srv.pid = 0;
	}
	/* A failed round may have left these open; the context waits for them. */
	evlog_client_close(C.rc);
	log_close_ro();
	free(resend_state.fresh_seen);
	if (C.zctx)
		zmq_ctx_term(C.zctx);
	for (int r = 0; r < C.nrounds; r++) {
		for (int t = 0; t < PRODUCERS; t++) {
			free(C.rounds[r].t[t].acked);
			free(C.rounds[r].t[t].inlog);
			free(C.rounds[r].t[t].final);
		}
	}
	if (ok)
		ts_rmrf(C.dir);
	else
		printf("crash: kept %s for inspection\n", C.dir);
	printf("crash: %.1f s\n", since_s(C.t0));
	return 0;
}

int main(void)
{
	static char names[ROUNDS_MAX][48];
	struct CMUnitTest tests[ROUNDS_MAX];
	const char *e = getenv("MMO_CRASH_ROUNDS");
	int kills = e && *e ? atoi(e) : KILL_ROUNDS_DEFAULT;
	uint64_t rng;

	if (kills < 1 || kills > KILL_ROUNDS_MAX) {
		fprintf(stderr, "MMO_CRASH_ROUNDS must be 1..%d\n", KILL_ROUNDS_MAX);
		return 2;
	}
	e = getenv("MMO_CRASH_SEED");
	C.seed = e && *e ? strtoull(e, NULL, 0) : SEED_DEFAULT;
	rng = C.seed;
	C.nrounds = kills + 2;
	for (int r = 0; r < C.nrounds; r++) {
		struct round *rd = &C.rounds[r];

		rd->no = r;
		/* The two SIGTERM rounds sit in the middle, so kill -9 rounds
		 * also follow a clean restart. */
		rd->kind = r == C.nrounds / 2 ? TERM_KILL : r == C.nrounds / 2 + 1 ? TERM : KILL;
		rd->delay_ms = 20 + (int)(splitmix(&rng) % 381);
		snprintf(names[r], sizeof(names[r]), "round_%02d_%s_after_%dms", r,
		         rd->kind == KILL        ? "kill9"
		         : rd->kind == TERM_KILL ? "term_then_kill9"
		                                 : "term",
		         rd->delay_ms);
		tests[r] = (struct CMUnitTest){names[r], test_round, NULL, NULL, rd};
	}
	return _cmocka_run_group_tests("crash", tests, (size_t)C.nrounds, group_setup,
	                               group_teardown);
}
