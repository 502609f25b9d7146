/* test_sub.c - the bus (log/server.c's PUB side) and its gap-filling
 * subscriber (log/sub.c): exactly once and in order from any from_seq, per
 * region, across a close and reopen, the same through a local log and through
 * the ingest, and gaps and tail losses filled with exact counters (through a
 * bus the test controls, so that the drops are deterministic).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "log/evlog.h"
#include "log/wire.h"
#include "schemas/mmo_be.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"

/* ------------------------------------------------------------ helpers */

struct fx {
	char dir[512];
	char ingest[96];
	char bus[96];
	evlog *l;
	void *ctx;
	evlog_server *srv;
	evlog_client *c;
};

/* Encode a player.move into buf; 0 if it does not fit. No cmocka asserts:
 * the appender thread uses it too. */
static size_t pack_move(uint8_t *buf, size_t cap, const char *id, const char *region, double x)
{
	Mmo__Event ev = MMO__EVENT__INIT;
	Mmo__Vec3 pos = MMO__VEC3__INIT;
	Mmo__PlayerMove mv = MMO__PLAYER_MOVE__INIT;

	ev.event_id = (char *)id;
	ev.type = "player.move";
	ev.player_id = "p1";
	ev.region_id = (char *)(region ? region : "");
	pos.x = x;
	mv.position = &pos;
	ev.body_case = MMO__EVENT__BODY_PLAYER_MOVE;
	ev.player_move = &mv;
	if (mmo__event__get_packed_size(&ev) > cap)
		return 0;
	return mmo__event__pack(&ev, buf);
}

static size_t mk(uint8_t *buf, size_t cap, const char *id, const char *region, double x)
{
	size_t n = pack_move(buf, cap, id, region, x);

	assert_true(n > 0);
	return n;
}

/* Two distinct ports that were free a moment ago. */
static void tcp_ports(struct fx *f)
{
	int a = ts_free_port(), b;

	do
		b = ts_free_port();
	while (b == a);
	snprintf(f->ingest, sizeof(f->ingest), "tcp://127.0.0.1:%d", a);
	snprintf(f->bus, sizeof(f->bus), "tcp://127.0.0.1:%d", b);
}

static int fx_new(void **state, bool tcp)
{
	struct fx *f = calloc(1, sizeof(*f));
	static int n;

	if (!f || ts_tmpdir(f->dir, sizeof(f->dir)))
		return -1;
	n++;
	if (tcp) {
		tcp_ports(f);
	} else {
		snprintf(f->ingest, sizeof(f->ingest), "inproc://sub-ingest-%d", n);
		snprintf(f->bus, sizeof(f->bus), "inproc://sub-bus-%d", n);
	}
	f->ctx = zmq_ctx_new();
	*state = f;
	return f->ctx ? 0 : -1;
}

static void log_open(struct fx *f)
{
	struct evlog_opts o = {.dir = f->dir, .nosync = true};

	assert_int_equal(evlog_open(&o, &f->l, NULL, 0), MMO_OK);
}

static void server_start(struct fx *f, bool bus)
{
	struct evlog_server_opts so = {
	    .log = f->l, .zctx = f->ctx, .ingest = f->ingest, .bus = bus ? f->bus : NULL};
	char msg[256] = "";
	int err;

	/* A server stopped a moment ago may still hold its endpoints (ZeroMQ
	 * releases them when its reaper has closed the sockets), and another
	 * process may have taken a free port since: retry, with new ports. */
	for (int i = 0; i < 100; i++) {
		err = evlog_server_start(&so, &f->srv, msg, sizeof(msg));
		if (err != MMO_EIO)
			break;
		if (!strncmp(f->ingest, "tcp:", 4) && !f->c) {
			tcp_ports(f);
			so.ingest = f->ingest;
			so.bus = bus ? f->bus : NULL;
		}
		usleep(20 * 1000);
	}
	assert_int_equal(err, MMO_OK);
}

/* A log, a server with a bus, a client. */
static int setup_server(void **state, bool tcp)
{
	struct fx *f;

	if (fx_new(state, tcp))
		return -1;
	f = *state;
	log_open(f);
	server_start(f, true);
	return evlog_client_open(f->ctx, f->ingest, 5000, &f->c) == MMO_OK ? 0 : -1;
}

static int setup_inproc(void **state)
{
	return setup_server(state, false);
}

static int setup_tcp(void **state)
{
	return setup_server(state, true);
}

/* Only a folder, a context and endpoints. */
static int setup_bare(void **state)
{
	return fx_new(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	evlog_client_close(f->c);
	evlog_server_stop(f->srv);
	evlog_close(f->l);
	zmq_ctx_term(f->ctx);
	ts_rmrf(f->dir);
	free(f);
	return 0;
}

/* The region of the event appended as seq s in the region tests. */
static const char *region_of(uint64_t s)
{
	static const char *const r[] = {"r1", "r2", "r10", NULL, "r1", "r2", "r1"};

	return r[s % 7];
}

/* Append events with seqs first..first+n-1 through client c, in requests of
 * at most per_req; region_of(seq) when regions, else r1. Returns MMO_OK, an
 * error, or -1 when a seq is not the expected one. No cmocka asserts: the
 * appender thread uses it too. */
static int try_append_range(evlog_client *c, uint64_t first, size_t n, size_t per_req, bool regions)
{
	struct evlog_in *in = calloc(per_req, sizeof(*in));
	uint8_t(*bufs)[256] = calloc(per_req, sizeof(*bufs));
	uint64_t *seqs = calloc(per_req, sizeof(*seqs));
	int *errs = calloc(per_req, sizeof(*errs));
	char id[32];
	int err = in && bufs && seqs && errs ? MMO_OK : MMO_ENOMEM;

	for (size_t done = 0; done < n && !err;) {
		size_t k = n - done < per_req ? n - done : per_req;

		for (size_t i = 0; i < k; i++) {
			uint64_t s = first + done + i;

			snprintf(id, sizeof(id), "ev-%llu", (unsigned long long)s);
			in[i].buf = bufs[i];
			in[i].len = pack_move(bufs[i], sizeof(bufs[i]), id,
			                      regions ? region_of(s) : "r1", (double)s);
			in[i].priority = 0;
		}
		err = evlog_client_append(c, in, k, seqs, errs);
		for (size_t i = 0; i < k && !err; i++) {
			if (errs[i])
				err = errs[i];
			else if (seqs[i] != first + done + i)
				err = -1;
		}
		done += k;
	}
	free(in);
	free(bufs);
	free(seqs);
	free(errs);
	return err;
}

static void append_range(evlog_client *c, uint64_t first, size_t n, size_t per_req, bool regions)
{
	assert_int_equal(try_append_range(c, first, n, per_req, regions), MMO_OK);
}

/* What a subscriber delivered. */
struct got {
	uint64_t *seqs;
	uint8_t (*hash)[EVLOG_HASH_LEN];
	size_t n, cap;
	evlog *l;       /* to check the bytes against, or NULL */
	size_t stop_at; /* return 99 from the callback at this count (0 = never) */
};

static void got_init(struct got *g, evlog *l)
{
	memset(g, 0, sizeof(*g));
	g->cap = 1 << 16;
	g->seqs = calloc(g->cap, sizeof(*g->seqs));
	g->hash = calloc(g->cap, sizeof(*g->hash));
	g->l = l;
}

static void got_free(struct got *g)
{
	free(g->seqs);
	free(g->hash);
}

static int got_cb(const struct evlog_rec *rec, void *arg)
{
	struct got *g = arg;
	uint8_t raw[512];
	size_t len;

	assert_true(g->n < g->cap);
	g->seqs[g->n] = rec->seq;
	memcpy(g->hash[g->n], rec->hash, EVLOG_HASH_LEN);
	g->n++;
	assert_int_equal(rec->raw_len, EVLOG_HDR_LEN + rec->event_len);
	if (g->l) {
		assert_int_equal(evlog_get(g->l, rec->seq, raw, sizeof(raw), &len), MMO_OK);
		assert_int_equal(len, rec->raw_len);
		assert_memory_equal(raw, rec->raw, len);
	}
	return g->stop_at && g->n == g->stop_at ? 99 : 0;
}

/* Poll until g holds want records (or timeout_ms passes). */
static void poll_until(evlog_sub *s, struct got *g, size_t want, int timeout_ms)
{
	int64_t end = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	while (g->n < want && mmo_mono_us() < end) {
		int rc = evlog_sub_poll(s, 20, got_cb, g, NULL);

		assert_true(rc == MMO_OK || rc == 99);
	}
}

/* Poll for ms more and expect nothing new. */
static void poll_quiet(evlog_sub *s, struct got *g, int ms)
{
	size_t before = g->n;
	int64_t end = mmo_mono_us() + (int64_t)ms * 1000;

	while (mmo_mono_us() < end)
		assert_int_equal(evlog_sub_poll(s, 20, got_cb, g, NULL), MMO_OK);
	assert_int_equal(g->n, before);
}

/* g holds exactly first..last, in order. */
static void expect_range(const struct got *g, uint64_t first, uint64_t last)
{
	assert_int_equal(g->n, last - first + 1);
	for (size_t i = 0; i < g->n; i++)
		assert_int_equal(g->seqs[i], first + i);
}

static evlog_sub *sub_open(struct fx *f, bool local, const char *const *regions, size_t nregions,
                           uint64_t from)
{
	struct evlog_sub_opts o = {.zctx = f->ctx,
	                           .bus = f->bus,
	                           .log = local ? f->l : NULL,
	                           .ingest = local ? NULL : f->ingest,
	                           .regions = regions,
	                           .nregions = nregions,
	                           .from_seq = from};
	evlog_sub *s = NULL;

	assert_int_equal(evlog_sub_open(&o, &s), MMO_OK);
	return s;
}

/* ------------------------------------------------------------ (a) all events */

static void late_subscriber_delivers_all_from_1_then_follows(struct fx *f, bool local)
{
	struct got g;
	evlog_sub *s;

	append_range(f->c, 1, 500, 100, false);
	got_init(&g, f->l);
	s = sub_open(f, local, NULL, 0, 1);
	poll_until(s, &g, 500, 10000);
	expect_range(&g, 1, 500);
	append_range(f->c, 501, 50, 7, false);
	poll_until(s, &g, 550, 10000);
	expect_range(&g, 1, 550);
	poll_quiet(s, &g, 200);
	/* One by one, as a game server would. */
	for (uint64_t q = 551; q <= 560; q++) {
		append_range(f->c, q, 1, 1, false);
		poll_until(s, &g, (size_t)q, 5000);
	}
	expect_range(&g, 1, 560);
	poll_quiet(s, &g, 100);
	evlog_sub_close(s);
	got_free(&g);
}

static void late_local_subscriber_delivers_all_from_1_then_follows(void **state)
{
	late_subscriber_delivers_all_from_1_then_follows(*state, true);
}

static void late_remote_subscriber_delivers_all_from_1_then_follows(void **state)
{
	late_subscriber_delivers_all_from_1_then_follows(*state, false);
}

static void subscriber_from_the_middle_starts_there(void **state)
{
	struct fx *f = *state;
	struct got g;
	evlog_sub *s;

	append_range(f->c, 1, 300, 100, false);
	got_init(&g, f->l);
	s = sub_open(f, false, NULL, 0, 201);
	poll_until(s, &g, 100, 10000);
	expect_range(&g, 201, 300);
	append_range(f->c, 301, 20, 20, false);
	poll_until(s, &g, 120, 10000);
	expect_range(&g, 201, 320);
	poll_quiet(s, &g, 100);
	evlog_sub_close(s);
	/* From past the head: only the new ones. */
	got_free(&g);
	got_init(&g, f->l);
	s = sub_open(f, true, NULL, 0, 321);
	poll_quiet(s, &g, 100);
	append_range(f->c, 321, 5, 5, false);
	poll_until(s, &g, 5, 5000);
	expect_range(&g, 321, 325);
	evlog_sub_close(s);
	got_free(&g);
}

static void tcp_bus_delivers_exactly_once_in_order(void **state)
{
	struct fx *f = *state;
	struct got g;
	evlog_sub *s;

	got_init(&g, f->l);
	s = sub_open(f, false, NULL, 0, 1);
	append_range(f->c, 1, 200, 10, false);
	poll_until(s, &g, 200, 10000);
	expect_range(&g, 1, 200);
	append_range(f->c, 201, 300, 3, false);
	poll_until(s, &g, 500, 10000);
	expect_range(&g, 1, 500);
	poll_quiet(s, &g, 100);
	evlog_sub_close(s);
	got_free(&g);
}

/* ------------------------------------------------------------ (b) regions */

/* The seqs of regions (any of them) in [1, head]. */
static size_t region_seqs(const char *const *regions, size_t nr, uint64_t head, uint64_t *out)
{
	size_t n = 0;

	for (uint64_t s = 1; s <= head; s++) {
		const char *r = region_of(s);

		for (size_t i = 0; r && i < nr; i++) {
			if (!strcmp(r, regions[i])) {
				out[n++] = s;
				break;
			}
		}
	}
	return n;
}

static void expect_seqs(const struct got *g, const uint64_t *want, size_t n)
{
	assert_int_equal(g->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(g->seqs[i], want[i]);
}

static void region_subscriber_gets_only_its_region_in_order(void **state)
{
	struct fx *f = *state;
	static const char *const r1[] = {"r1"};
	uint64_t want[512];
	size_t nw;
	struct got g, late, lr;
	evlog_sub *s, *s2, *s3;

	got_init(&g, f->l);
	s = sub_open(f, true, r1, 1, 1);
	poll_quiet(s, &g, 50);
	for (uint64_t first = 1; first <= 350; first += 50) {
		append_range(f->c, first, 50, 9, true);
		assert_int_equal(evlog_sub_poll(s, 10, got_cb, &g, NULL), MMO_OK);
	}
	nw = region_seqs(r1, 1, 350, want);
	poll_until(s, &g, nw, 10000);
	expect_seqs(&g, want, nw);
	poll_quiet(s, &g, 100);

	/* Opened late: catches up from the region index, then follows. */
	got_init(&late, f->l);
	got_init(&lr, f->l);
	s2 = sub_open(f, true, r1, 1, 1);
	s3 = sub_open(f, false, r1, 1, 1);
	poll_until(s2, &late, nw, 10000);
	poll_until(s3, &lr, nw, 10000);
	expect_seqs(&late, want, nw);
	expect_seqs(&lr, want, nw);
	append_range(f->c, 351, 50, 50, true);
	nw = region_seqs(r1, 1, 400, want);
	poll_until(s, &g, nw, 10000);
	poll_until(s2, &late, nw, 10000);
	poll_until(s3, &lr, nw, 10000);
	expect_seqs(&g, want, nw);
	expect_seqs(&late, want, nw);
	expect_seqs(&lr, want, nw);
	poll_quiet(s3, &lr, 100);
	evlog_sub_close(s);
	evlog_sub_close(s2);
	evlog_sub_close(s3);
	got_free(&g);
	got_free(&late);
	got_free(&lr);
}

/* Per region, delivered seqs are increasing; together they are exactly want. */
static void expect_regions(const struct got *g, const char *const *regions, size_t nr,
                           uint64_t head)
{
	uint64_t want[1024], last[8] = {0};
	size_t nw = region_seqs(regions, nr, head, want);
	uint8_t *seen = calloc(head + 1, 1);

	assert_int_equal(g->n, nw);
	for (size_t i = 0; i < g->n; i++) {
		uint64_t s = g->seqs[i];
		const char *r;
		size_t k;

		assert_true(s >= 1 && s <= head);
		assert_int_equal(seen[s], 0);
		seen[s] = 1;
		r = region_of(s);
		assert_non_null(r);
		for (k = 0; k < nr && strcmp(r, regions[k]); k++)
			;
		assert_true(k < nr);
		assert_true(s > last[k]);
		last[k] = s;
	}
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(seen[want[i]], 1);
	free(seen);
}

/* How many of seqs lo..hi are in one of regions. */
static size_t region_count(const char *const *regions, size_t nr, uint64_t lo, uint64_t hi)
{
	size_t n = 0;

	for (uint64_t s = lo; s <= hi; s++) {
		const char *r = region_of(s);

		for (size_t i = 0; r && i < nr; i++) {
			if (!strcmp(r, regions[i])) {
				n++;
				break;
			}
		}
	}
	return n;
}

static void multi_region_subscriber_keeps_each_region_in_order(void **state)
{
	struct fx *f = *state;
	static const char *const two[] = {"r10", "r2"};
	static const char *const three[] = {"r10", "r2", "r1"};
	static const char *const after[] = {"r10", "r1"};
	struct got g;
	evlog_sub *s, *s2;

	append_range(f->c, 1, 100, 25, true);
	got_init(&g, f->l);
	s = sub_open(f, false, two, 2, 1);
	poll_until(s, &g, region_count(two, 2, 1, 100), 10000);
	append_range(f->c, 101, 100, 13, true);
	poll_until(s, &g, region_count(two, 2, 1, 200), 10000);
	poll_quiet(s, &g, 100);
	expect_regions(&g, two, 2, 200);

	/* Add r1 from the start: it catches up without repeating the others. */
	assert_int_equal(evlog_sub_add_region(s, "r1", 1), MMO_OK);
	assert_int_equal(evlog_sub_add_region(s, "r1", 1), MMO_OK); /* already there */
	append_range(f->c, 201, 20, 20, true);
	poll_until(s, &g, region_count(three, 3, 1, 220), 10000);
	poll_quiet(s, &g, 100);
	expect_regions(&g, three, 3, 220);

	/* Remove r2: no more of it, the others go on. */
	size_t before = g.n;
	assert_int_equal(evlog_sub_remove_region(s, "r2"), MMO_OK);
	assert_int_equal(evlog_sub_remove_region(s, "r2"), MMO_ENOTFOUND);
	append_range(f->c, 221, 30, 30, true);
	poll_until(s, &g, before + region_count(after, 2, 221, 250), 10000);
	poll_quiet(s, &g, 100);
	assert_int_equal(g.n, before + region_count(after, 2, 221, 250));
	for (size_t i = before; i < g.n; i++) {
		assert_true(g.seqs[i] >= 221);
		assert_string_not_equal(region_of(g.seqs[i]), "r2");
	}

	/* Bad arguments. */
	assert_int_equal(evlog_sub_add_region(s, "bad region", 1), MMO_EINVAL);
	s2 = sub_open(f, true, NULL, 0, 1);
	assert_int_equal(evlog_sub_add_region(s2, "r1", 1), MMO_EINVAL); /* an all-events sub */
	evlog_sub_close(s2);
	evlog_sub_close(s);
	got_free(&g);
}

/* ------------------------------------------------------------ (c) gaps */

struct appender {
	struct fx *f;
	uint64_t first;
	size_t n, per_req;
	int sleep_us;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	evlog_client *c;

	if (evlog_client_open(a->f->ctx, a->f->ingest, 5000, &c) != MMO_OK)
		return (void *)1;
	for (size_t done = 0; done < a->n; done += a->per_req) {
		if (try_append_range(c, a->first + done, a->per_req, a->per_req, true) != MMO_OK) {
			evlog_client_close(c);
			return (void *)2;
		}
		usleep((useconds_t)a->sleep_us);
	}
	evlog_client_close(c);
	return NULL;
}

static void reopened_subscriber_resumes_at_last_plus_1_while_appends_go_on(void **state)
{
	struct fx *f = *state;
	struct appender a = {f, 1, 600, 10, 2000};
	struct got g1, g2;
	pthread_t th;
	evlog_sub *s;
	uint64_t last;
	void *ret;

	got_init(&g1, f->l);
	got_init(&g2, f->l);
	g1.stop_at = 150;
	s = sub_open(f, false, NULL, 0, 1);
	assert_int_equal(pthread_create(&th, NULL, appender_main, &a), 0);
	poll_until(s, &g1, 150, 20000);
	evlog_sub_close(s);
	expect_range(&g1, 1, 150);
	last = g1.seqs[g1.n - 1];

	/* Closed for a while: the bus drops what it publishes meanwhile. */
	usleep(100 * 1000);
	s = sub_open(f, false, NULL, 0, last + 1);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	poll_until(s, &g2, 600 - last, 20000);
	expect_range(&g2, last + 1, 600);
	poll_quiet(s, &g2, 100);
	evlog_sub_close(s);
	got_free(&g1);
	got_free(&g2);
}

static void local_and_remote_subscribers_deliver_the_same_sequence(void **state)
{
	struct fx *f = *state;
	struct appender a = {f, 1, 800, 20, 500};
	static const char *const r1[] = {"r1"};
	struct got gl, gr, rl, rr;
	evlog_sub *sl, *sr, *rsl, *rsr;
	pthread_t th;
	void *ret;
	uint64_t want[1024];
	size_t nw;

	got_init(&gl, f->l);
	got_init(&gr, f->l);
	got_init(&rl, f->l);
	got_init(&rr, f->l);
	sl = sub_open(f, true, NULL, 0, 1);
	sr = sub_open(f, false, NULL, 0, 1);
	rsl = sub_open(f, true, r1, 1, 1);
	rsr = sub_open(f, false, r1, 1, 1);
	assert_int_equal(pthread_create(&th, NULL, appender_main, &a), 0);
	int64_t end = mmo_mono_us() + 30 * 1000000;
	while ((gl.n < 800 || gr.n < 800) && mmo_mono_us() < end) {
		assert_int_equal(evlog_sub_poll(sl, 5, got_cb, &gl, NULL), MMO_OK);
		assert_int_equal(evlog_sub_poll(sr, 5, got_cb, &gr, NULL), MMO_OK);
		assert_int_equal(evlog_sub_poll(rsl, 0, got_cb, &rl, NULL), MMO_OK);
		assert_int_equal(evlog_sub_poll(rsr, 0, got_cb, &rr, NULL), MMO_OK);
	}
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	nw = region_seqs(r1, 1, 800, want);
	poll_until(rsl, &rl, nw, 10000);
	poll_until(rsr, &rr, nw, 10000);
	expect_range(&gl, 1, 800);
	expect_range(&gr, 1, 800);
	assert_memory_equal(gl.hash, gr.hash, 800 * EVLOG_HASH_LEN);
	expect_seqs(&rl, want, nw);
	expect_seqs(&rr, want, nw);
	assert_memory_equal(rl.hash, rr.hash, nw * EVLOG_HASH_LEN);

	uint64_t gaps, filled;
	evlog_sub_counters(sl, &gaps, &filled);
	print_message("local all: %llu gaps, %llu filled\n", (unsigned long long)gaps,
	              (unsigned long long)filled);
	evlog_sub_counters(sr, &gaps, &filled);
	print_message("remote all: %llu gaps, %llu filled\n", (unsigned long long)gaps,
	              (unsigned long long)filled);
	evlog_sub_close(sl);
	evlog_sub_close(sr);
	evlog_sub_close(rsl);
	evlog_sub_close(rsr);
	got_free(&gl);
	got_free(&gr);
	got_free(&rl);
	got_free(&rr);
}

static void callback_stop_is_returned_and_nothing_is_lost(void **state)
{
	struct fx *f = *state;
	struct got g;
	evlog_sub *s;
	int rc;

	append_range(f->c, 1, 50, 50, false);
	got_init(&g, f->l);
	s = sub_open(f, true, NULL, 0, 1);
	g.stop_at = 10;
	rc = evlog_sub_poll(s, 100, got_cb, &g, NULL);
	assert_int_equal(rc, 99);
	assert_int_equal(g.n, 10);
	g.stop_at = 0;
	poll_until(s, &g, 50, 5000);
	expect_range(&g, 1, 50);
	/* Stop on a bus message. */
	g.stop_at = 51;
	append_range(f->c, 51, 5, 5, false);
	for (int i = 0; i < 100 && g.n < 51; i++) {
		rc = evlog_sub_poll(s, 20, got_cb, &g, NULL);
		assert_true(rc == MMO_OK || rc == 99);
	}
	assert_int_equal(g.n, 51);
	g.stop_at = 0;
	poll_until(s, &g, 55, 5000);
	expect_range(&g, 1, 55);
	poll_quiet(s, &g, 100);
	evlog_sub_close(s);
	got_free(&g);
}

/* ---------------------------------------- (c, d) a bus the test controls */

/* An XPUB bound at f->bus that the test publishes on by hand: messages it
 * leaves out are drops the subscriber must notice. */
struct fakebus {
	void *pub;
	evlog *l;
};

static void fakebus_open(struct fx *f, struct fakebus *b)
{
	int linger = 0;

	b->pub = zmq_socket(f->ctx, ZMQ_XPUB);
	assert_non_null(b->pub);
	zmq_setsockopt(b->pub, ZMQ_LINGER, &linger, sizeof(linger));
	assert_int_equal(zmq_bind(b->pub, f->bus), 0);
	b->l = f->l;
}

/* Wait until a subscription (of topic, or any) reached the publisher. */
static void fakebus_wait_sub(struct fakebus *b, int nsubs)
{
	zmq_pollitem_t pi = {b->pub, 0, ZMQ_POLLIN, 0};

	for (int i = 0; i < nsubs; i++) {
		uint8_t buf[128];

		assert_int_equal(zmq_poll(&pi, 1, 5000), 1);
		assert_true(zmq_recv(b->pub, buf, sizeof(buf), 0) >= 1);
		assert_int_equal(buf[0], 1); /* a subscribe */
	}
}

/* Publish the log's record seq as the server would, with region prev. */
static void fakebus_publish(struct fakebus *b, uint64_t seq, uint64_t region_prev)
{
	uint8_t raw[512], meta[16];
	char topic[80];
	size_t len;
	struct evlog_rec rec;
	Mmo__Event *ev;

	assert_int_equal(evlog_get(b->l, seq, raw, sizeof(raw), &len), MMO_OK);
	assert_int_equal(evlog_rec_parse(seq, raw, len, &rec), MMO_OK);
	assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
	snprintf(topic, sizeof(topic), "%s|", ev->region_id);
	mmo_event_free(ev);
	mmo_be64_put(meta, seq);
	mmo_be64_put(meta + 8, region_prev);
	assert_true(zmq_send(b->pub, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(b->pub, meta, 16, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(b->pub, raw, len, 0) >= 0);
}

/* Append seqs first..last straight into the log, region r. */
static void log_append(evlog *l, uint64_t first, uint64_t last, const char *r)
{
	for (uint64_t s = first; s <= last; s++) {
		uint8_t buf[256];
		char id[32];
		struct evlog_in in;
		struct evlog_out out;

		snprintf(id, sizeof(id), "fb-%llu", (unsigned long long)s);
		in = (struct evlog_in){buf, mk(buf, sizeof(buf), id, r, (double)s), 0};
		assert_int_equal(evlog_append(l, &in, 1, 1000, &out), MMO_OK);
		assert_int_equal(out.err, MMO_OK);
		assert_int_equal(out.seq, s);
	}
}

static void expect_counters(evlog_sub *s, uint64_t gaps, uint64_t filled)
{
	uint64_t g, fl;

	evlog_sub_counters(s, &g, &fl);
	assert_int_equal(g, gaps);
	assert_int_equal(fl, filled);
}

/* Either the log itself (local) or a server without a bus in front of it
 * (remote) fills the gaps. */
static void dropped_messages_are_filled_with_exact_counters(struct fx *f, bool local)
{
	struct fakebus b;
	struct got g;
	evlog_sub *s;

	log_open(f);
	if (!local)
		server_start(f, false); /* only to serve reads: the test appends itself */
	fakebus_open(f, &b);
	got_init(&g, f->l);
	s = sub_open(f, local, NULL, 0, 1);
	fakebus_wait_sub(&b, 1);
	assert_int_equal(evlog_sub_poll(s, 0, got_cb, &g, NULL), MMO_OK); /* catch up: none */

	log_append(f->l, 1, 2, "r1");
	fakebus_publish(&b, 1, 0);
	fakebus_publish(&b, 2, 1);
	poll_until(s, &g, 2, 5000);
	expect_range(&g, 1, 2);
	expect_counters(s, 0, 0);

	/* 3 and 4 dropped: noticed at 5, read from the log. */
	log_append(f->l, 3, 8, "r1");
	fakebus_publish(&b, 5, 4);
	fakebus_publish(&b, 6, 5);
	poll_until(s, &g, 6, 5000);
	expect_range(&g, 1, 6);
	expect_counters(s, 1, 2);
	fakebus_publish(&b, 7, 6);
	fakebus_publish(&b, 8, 7);
	poll_until(s, &g, 8, 5000);
	expect_counters(s, 1, 2);

	/* The tail is dropped (9, 10): a quiet bus makes it ask for the head. */
	log_append(f->l, 9, 10, "r1");
	poll_until(s, &g, 10, 5000);
	expect_range(&g, 1, 10);
	expect_counters(s, 2, 4);

	/* Late copies of what was filled are not delivered again. */
	fakebus_publish(&b, 9, 8);
	fakebus_publish(&b, 10, 9);
	fakebus_publish(&b, 3, 2);
	poll_quiet(s, &g, 100);
	expect_range(&g, 1, 10);
	expect_counters(s, 2, 4);

	/* A whole burst dropped but its last message. */
	log_append(f->l, 11, 500, "r1");
	fakebus_publish(&b, 500, 499);
	poll_until(s, &g, 500, 5000);
	expect_range(&g, 1, 500);
	expect_counters(s, 3, 493);

	evlog_sub_close(s);
	zmq_close(b.pub);
	got_free(&g);
}

/* Subscribers that name a role add their gaps to that role's process-wide
 * counters, which /metrics renders (tools/cli/cmd_serve.c). */
static void role_counters_sum_the_gaps_of_that_roles_subscribers(void **state)
{
	struct fx *f = *state;
	struct evlog_sub_opts o = {.zctx = f->ctx, .bus = f->bus, .log = NULL, .from_seq = 1};
	const char *const roles[] = {"views", "world"};
	struct fakebus b;
	struct got g;
	evlog_sub *s;
	uint64_t g0, f0, gaps, filled, wg0, wf0;
	char text[1024], want[256];

	log_open(f);
	o.log = f->l;
	evlog_sub_role_counters("views", &g0, &f0);
	evlog_sub_role_counters("world", &wg0, &wf0);
	fakebus_open(f, &b);
	got_init(&g, f->l);
	o.role = "views";
	assert_int_equal(evlog_sub_open(&o, &s), MMO_OK);
	fakebus_wait_sub(&b, 1);
	assert_int_equal(evlog_sub_poll(s, 0, got_cb, &g, NULL), MMO_OK);

	/* 1 and 2 dropped: noticed at 3, read from the log. */
	log_append(f->l, 1, 4, "r1");
	fakebus_publish(&b, 3, 2);
	fakebus_publish(&b, 4, 3);
	poll_until(s, &g, 4, 5000);
	expect_range(&g, 1, 4);
	expect_counters(s, 1, 2);
	evlog_sub_close(s);

	evlog_sub_role_counters("views", &gaps, &filled);
	assert_int_equal(gaps - g0, 1);
	assert_int_equal(filled - f0, 2);
	evlog_sub_role_counters("world", &gaps, &filled);
	assert_int_equal(gaps, wg0);
	assert_int_equal(filled, wf0);
	evlog_sub_role_counters("nobody", &gaps, &filled);
	assert_int_equal(gaps, 0);
	assert_int_equal(filled, 0);

	assert_true(evlog_sub_metrics_format(roles, 2, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "# TYPE mmo_bus_gaps_total counter\n"));
	assert_non_null(strstr(text, "# TYPE mmo_bus_gap_events_filled_total counter\n"));
	snprintf(want, sizeof(want), "mmo_bus_gaps_total{role=\"views\"} %llu\n",
	         (unsigned long long)(g0 + 1));
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "mmo_bus_gap_events_filled_total{role=\"views\"} %llu\n",
	         (unsigned long long)(f0 + 2));
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "mmo_bus_gaps_total{role=\"world\"} %llu\n",
	         (unsigned long long)wg0);
	assert_non_null(strstr(text, want));
	/* Too small a buffer: whole lines only. */
	assert_true(evlog_sub_metrics_format(roles, 2, text, 60) < 60);
	assert_true(text[0] == 0 || text[strlen(text) - 1] == '\n');

	zmq_close(b.pub);
	got_free(&g);
}

static void local_sub_fills_dropped_and_lost_tail_messages(void **state)
{
	dropped_messages_are_filled_with_exact_counters(*state, true);
}

static void remote_sub_fills_dropped_and_lost_tail_messages(void **state)
{
	dropped_messages_are_filled_with_exact_counters(*state, false);
}

static void region_gaps_are_filled_from_the_region_index(struct fx *f, bool local)
{
	static const char *const r1[] = {"r1"};
	struct fakebus b;
	struct got g;
	evlog_sub *s;

	log_open(f);
	if (!local)
		server_start(f, false);
	fakebus_open(f, &b);
	got_init(&g, f->l);
	s = sub_open(f, local, r1, 1, 1);
	fakebus_wait_sub(&b, 1);
	assert_int_equal(evlog_sub_poll(s, 0, got_cb, &g, NULL), MMO_OK);

	/* seqs: 1 r1, 2 r2, 3 r1, 4 r1, 5 r2, 6 r1 */
	log_append(f->l, 1, 1, "r1");
	log_append(f->l, 2, 2, "r2");
	log_append(f->l, 3, 4, "r1");
	log_append(f->l, 5, 5, "r2");
	log_append(f->l, 6, 6, "r1");
	fakebus_publish(&b, 1, 0);
	fakebus_publish(&b, 2, 0); /* another region: filtered by the topic */
	fakebus_publish(&b, 4, 3); /* 3 dropped */
	fakebus_publish(&b, 5, 2);
	fakebus_publish(&b, 6, 4);
	poll_until(s, &g, 4, 5000);
	expect_seqs(&g, (uint64_t[]){1, 3, 4, 6}, 4);
	expect_counters(s, 1, 1);
	/* Only the tail check can find 7 (r1), lost with nothing after it. */
	log_append(f->l, 7, 7, "r2");
	log_append(f->l, 8, 8, "r1");
	poll_until(s, &g, 5, 5000);
	expect_seqs(&g, (uint64_t[]){1, 3, 4, 6, 8}, 5);
	expect_counters(s, 2, 2);
	fakebus_publish(&b, 8, 6);
	poll_quiet(s, &g, 100);
	expect_counters(s, 2, 2);
	evlog_sub_close(s);
	zmq_close(b.pub);
	got_free(&g);
}

static void local_region_sub_fills_gaps_from_the_region_index(void **state)
{
	region_gaps_are_filled_from_the_region_index(*state, true);
}

static void remote_region_sub_fills_gaps_from_the_region_index(void **state)
{
	region_gaps_are_filled_from_the_region_index(*state, false);
}

/* ------------------------------------------------------------ the bus format */

static void bus_messages_carry_topic_seq_and_region_prev(void **state)
{
	struct fx *f = *state;
	void *sub = zmq_socket(f->ctx, ZMQ_SUB);
	int linger = 0, tmo = 5000;
	uint64_t probe = 0;

	zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_connect(sub, f->bus), 0);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	/* Until the subscription is through, the bus drops: probe with events. */
	for (;;) {
		zmq_pollitem_t pi = {sub, 0, ZMQ_POLLIN, 0};

		append_range(f->c, ++probe, 1, 1, false); /* region r1 */
		if (zmq_poll(&pi, 1, 50) == 1)
			break;
		assert_true(probe < 200);
	}
	/* Drain the probes. */
	for (;;) {
		zmq_pollitem_t pi = {sub, 0, ZMQ_POLLIN, 0};
		uint8_t buf[512];

		if (zmq_poll(&pi, 1, 100) != 1)
			break;
		assert_true(zmq_recv(sub, buf, sizeof(buf), 0) >= 0);
	}
	/* From now on: seq probe+1.. with regions region_of(seq). */
	uint64_t first = probe + 1, n = 40;
	uint64_t prev_r1 = probe, prev_other[4] = {0};
	append_range(f->c, first, n, 6, true);
	for (uint64_t s = first; s < first + n; s++) {
		uint8_t topic[80], meta[32], rec[512], raw[512];
		int tl, ml, rl;
		size_t len;
		const char *r = region_of(s);
		char want_topic[80];
		uint64_t want_prev;

		tl = zmq_recv(sub, topic, sizeof(topic), 0);
		ml = zmq_recv(sub, meta, sizeof(meta), 0);
		rl = zmq_recv(sub, rec, sizeof(rec), 0);
		assert_true(tl > 0 && ml == 16 && rl > EVLOG_HDR_LEN);
		snprintf(want_topic, sizeof(want_topic), "%s|", r ? r : "");
		assert_int_equal(tl, strlen(want_topic));
		assert_memory_equal(topic, want_topic, (size_t)tl);
		assert_int_equal(mmo_be64_get(meta), s);
		if (!r) {
			want_prev = 0;
		} else if (!strcmp(r, "r1")) {
			want_prev = prev_r1;
			prev_r1 = s;
		} else {
			size_t k = !strcmp(r, "r2") ? 0 : 1;

			want_prev = prev_other[k];
			prev_other[k] = s;
		}
		assert_int_equal(mmo_be64_get(meta + 8), want_prev);
		assert_int_equal(evlog_get(f->l, s, raw, sizeof(raw), &len), MMO_OK);
		assert_int_equal((size_t)rl, len);
		assert_memory_equal(rec, raw, len);
	}

	/* After a restart, the region prev comes from the log. */
	evlog_server_stop(f->srv);
	f->srv = NULL;
	evlog_client_close(f->c);
	f->c = NULL;
	zmq_close(sub);
	server_start(f, true);
	assert_int_equal(evlog_client_open(f->ctx, f->ingest, 5000, &f->c), MMO_OK);
	sub = zmq_socket(f->ctx, ZMQ_SUB);
	zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_connect(sub, f->bus), 0);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "r2|", 3);
	/* Probe with r2 events (region_of(s) for s = 1 mod 7 is r2). */
	uint64_t s = first + n;
	uint64_t last_r2 = 0;
	for (uint64_t t = 1; t < s; t++)
		if (region_of(t) && !strcmp(region_of(t), "r2"))
			last_r2 = t;
	for (;; s++) {
		zmq_pollitem_t pi = {sub, 0, ZMQ_POLLIN, 0};
		uint8_t topic[80], meta[32], rec[512];

		append_range(f->c, s, 1, 1, true);
		if (region_of(s) && !strcmp(region_of(s), "r2")) {
			if (zmq_poll(&pi, 1, 100) == 1) {
				assert_int_equal(zmq_recv(sub, topic, sizeof(topic), 0), 3);
				assert_int_equal(zmq_recv(sub, meta, sizeof(meta), 0), 16);
				assert_true(zmq_recv(sub, rec, sizeof(rec), 0) > 0);
				assert_int_equal(mmo_be64_get(meta), s);
				assert_int_equal(mmo_be64_get(meta + 8), last_r2);
				break;
			}
			last_r2 = s;
		}
		assert_true(s < first + n + 500);
	}
	zmq_close(sub);
}

/* ------------------------------------------------------------ (d) a real drop */

static void real_bus_overflow_is_filled_from_the_log(void **state)
{
	struct fx *f = *state;
	enum { N = 230000, PER = 1024 };
	struct got g;
	evlog_sub *s;
	uint64_t gaps, filled;
	int64_t t0 = mmo_mono_us();

	/* The bus holds about 2 x 100000 messages (PUB and SUB high-water marks);
	 * a subscriber that does not read while more are published loses the
	 * rest for sure, and must find them through the tail check. */
	got_init(&g, NULL);
	free(g.seqs);
	free(g.hash);
	g.cap = N;
	g.seqs = calloc(N, sizeof(*g.seqs));
	g.hash = calloc(N, sizeof(*g.hash));
	s = sub_open(f, true, NULL, 0, 1);
	assert_int_equal(evlog_sub_poll(s, 0, got_cb, &g, NULL), MMO_OK);
	/* Make sure the subscription is through before the flood: probe until
	 * an event comes over the bus rather than from the log. */
	uint64_t probe = 0, gaps0, filled0;
	do {
		probe++;
		append_range(f->c, probe, 1, 1, false);
		poll_until(s, &g, probe, 5000);
		evlog_sub_counters(s, &gaps0, &filled0);
		poll_quiet(s, &g, 30); /* a quiet poll fills a dropped probe */
		evlog_sub_counters(s, &gaps, &filled);
	} while (filled != filled0 && probe < 100);
	append_range(f->c, probe + 1, N - probe, PER, false);
	print_message("appended %d in %.1f s\n", N, (double)(mmo_mono_us() - t0) / 1e6);
	poll_until(s, &g, N, 60000);
	print_message("delivered in %.1f s\n", (double)(mmo_mono_us() - t0) / 1e6);
	expect_range(&g, 1, N);
	evlog_sub_counters(s, &gaps, &filled);
	print_message("%llu gaps, %llu filled\n", (unsigned long long)gaps,
	              (unsigned long long)filled);
	assert_true(gaps > gaps0);
	assert_true(filled > filled0);
	evlog_sub_close(s);
	got_free(&g);
}

static void sub_refuses_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct evlog_sub_opts o = {.zctx = f->ctx, .bus = f->bus, .ingest = f->ingest};
	evlog_sub *s = NULL;
	struct got g;

	assert_int_equal(evlog_sub_open(NULL, &s), MMO_EINVAL);
	o.bus = NULL;
	assert_int_equal(evlog_sub_open(&o, &s), MMO_EINVAL);
	o.bus = f->bus;
	o.ingest = NULL;
	assert_int_equal(evlog_sub_open(&o, &s), MMO_EINVAL); /* neither log nor ingest */
	o.ingest = f->ingest;
	o.regions = (const char *const[]){"ok", "bad region"};
	o.nregions = 2;
	assert_int_equal(evlog_sub_open(&o, &s), MMO_EINVAL);
	assert_null(s);
	o.nregions = 1;
	assert_int_equal(evlog_sub_open(&o, &s), MMO_OK);
	got_init(&g, NULL);
	assert_int_equal(evlog_sub_poll(NULL, 0, got_cb, &g, NULL), MMO_EINVAL);
	assert_int_equal(evlog_sub_poll(s, 0, NULL, NULL, NULL), MMO_EINVAL);
	assert_int_equal(evlog_sub_remove_region(s, "nope"), MMO_ENOTFOUND);
	evlog_sub_close(s);
	evlog_sub_close(NULL);
	got_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(late_local_subscriber_delivers_all_from_1_then_follows,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(late_remote_subscriber_delivers_all_from_1_then_follows,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(subscriber_from_the_middle_starts_there, setup_inproc,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(tcp_bus_delivers_exactly_once_in_order, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(region_subscriber_gets_only_its_region_in_order,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(multi_region_subscriber_keeps_each_region_in_order,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(
	        reopened_subscriber_resumes_at_last_plus_1_while_appends_go_on, setup_inproc,
	        teardown),
	    cmocka_unit_test_setup_teardown(local_and_remote_subscribers_deliver_the_same_sequence,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(callback_stop_is_returned_and_nothing_is_lost,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(role_counters_sum_the_gaps_of_that_roles_subscribers,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(local_sub_fills_dropped_and_lost_tail_messages,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(remote_sub_fills_dropped_and_lost_tail_messages,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(local_region_sub_fills_gaps_from_the_region_index,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(remote_region_sub_fills_gaps_from_the_region_index,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(bus_messages_carry_topic_seq_and_region_prev,
	                                    setup_inproc, teardown),
	    cmocka_unit_test_setup_teardown(real_bus_overflow_is_filled_from_the_log, setup_inproc,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(sub_refuses_bad_arguments, setup_inproc, teardown),
	};

	if (getenv("TEST_FILTER")) /* run some cases only: TEST_FILTER='*region*' */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
