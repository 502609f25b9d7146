/* test_bus.c - the bus's table of the last seq per region is bounded: a
 * client sending a million made-up region ids does not grow the log's
 * memory past the cap, and the region-previous seq on the bus stays right
 * for regions evicted and seen again (log/bus.c, docs/log.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log/evlog.h"
#include "log/wire.h"
#include "schemas/mmo_be.h"
#include "testsupport.h"

#define NREGIONS 1000000
#define PER_REQ  EVLOG_REQ_MAX

struct fx {
	char dir[512];
	evlog *l;
	void *ctx, *sub;
	evlog_server *srv;
	evlog_client *c;
	uint8_t (*buf)[128];
	struct evlog_in *in;
	uint64_t *seqs;
	int *errs;
};

static size_t mkmove(uint8_t *buf, size_t cap, const char *id, const char *region)
{
	Mmo__Event ev = MMO__EVENT__INIT;
	Mmo__Vec3 pos = MMO__VEC3__INIT;
	Mmo__PlayerMove mv = MMO__PLAYER_MOVE__INIT;
	size_t n;

	ev.event_id = (char *)id;
	ev.type = "player.move";
	ev.player_id = "p1";
	ev.region_id = (char *)region;
	pos.x = 1;
	mv.position = &pos;
	ev.body_case = MMO__EVENT__BODY_PLAYER_MOVE;
	ev.player_move = &mv;
	n = mmo__event__get_packed_size(&ev);
	assert_true(n <= cap);
	assert_int_equal(mmo__event__pack(&ev, buf), n);
	return n;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct evlog_opts o = {.dir = NULL, .nosync = true};
	struct evlog_server_opts so = {0};
	char msg[256] = "";
	int zero = 0;

	if (!f || ts_tmpdir(f->dir, sizeof(f->dir)))
		return -1;
	o.dir = f->dir;
	f->ctx = zmq_ctx_new();
	f->buf = calloc(PER_REQ, sizeof(*f->buf));
	f->in = calloc(PER_REQ, sizeof(*f->in));
	f->seqs = calloc(PER_REQ, sizeof(*f->seqs));
	f->errs = calloc(PER_REQ, sizeof(*f->errs));
	if (!f->ctx || !f->buf || !f->in || !f->seqs || !f->errs)
		return -1;
	assert_int_equal(evlog_open(&o, &f->l, NULL, 0), MMO_OK);
	so.log = f->l;
	so.zctx = f->ctx;
	so.ingest = "inproc://bus-test-ingest";
	so.bus = "inproc://bus-test-bus";
	assert_int_equal(evlog_server_start(&so, &f->srv, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(evlog_client_open(f->ctx, so.ingest, 10000, &f->c), MMO_OK);
	f->sub = zmq_socket(f->ctx, ZMQ_SUB);
	assert_non_null(f->sub);
	zmq_setsockopt(f->sub, ZMQ_LINGER, &zero, sizeof(zero));
	/* Only the watched regions: the publisher filters, so the million
	 * others never queue up on this socket. */
	zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "keep|", 5);
	zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "r0000000|", 9);
	assert_int_equal(zmq_connect(f->sub, so.bus), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	zmq_close(f->sub);
	evlog_client_close(f->c);
	evlog_server_stop(f->srv);
	evlog_close(f->l);
	zmq_ctx_term(f->ctx);
	ts_rmrf(f->dir);
	free(f->buf);
	free(f->in);
	free(f->seqs);
	free(f->errs);
	free(f);
	return 0;
}

static uint64_t wire_stat(struct fx *f, const char *name)
{
	char text[8192], key[128];
	const char *p;

	assert_int_equal(evlog_client_stats(f->c, text, sizeof(text)), MMO_OK);
	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(text, key);
	assert_non_null(p);
	return strtoull(p + strlen(key), NULL, 10);
}

/* Append one event of region; return its seq. */
static uint64_t append_one(struct fx *f, const char *id, const char *region)
{
	f->in[0].buf = f->buf[0];
	f->in[0].len = mkmove(f->buf[0], sizeof(f->buf[0]), id, region);
	f->in[0].priority = 0;
	assert_int_equal(evlog_client_append(f->c, f->in, 1, f->seqs, f->errs), MMO_OK);
	assert_int_equal(f->errs[0], MMO_OK);
	return f->seqs[0];
}

/* The next bus message, of region: its seq and region-previous seq. */
static bool recv_region(struct fx *f, const char *region, int ms, uint64_t *seq, uint64_t *prev)
{
	zmq_pollitem_t pi = {f->sub, 0, ZMQ_POLLIN, 0};
	uint8_t topic[80], meta[16], rec[512];
	size_t rl = strlen(region);

	if (zmq_poll(&pi, 1, ms) != 1)
		return false;
	assert_int_equal(zmq_recv(f->sub, topic, sizeof(topic), 0), (int)rl + 1);
	assert_memory_equal(topic, region, rl);
	assert_int_equal(topic[rl], '|');
	assert_int_equal(zmq_recv(f->sub, meta, sizeof(meta), 0), 16);
	assert_true(zmq_recv(f->sub, rec, sizeof(rec), 0) > 0);
	*seq = mmo_be64_get(meta);
	*prev = mmo_be64_get(meta + 8);
	return true;
}

/* Append an event of region and expect it on the bus with prev. */
static uint64_t expect_prev(struct fx *f, const char *id, const char *region, uint64_t prev)
{
	uint64_t seq = append_one(f, id, region), got_seq = 0, got_prev = 12345;

	assert_true(recv_region(f, region, 5000, &got_seq, &got_prev));
	assert_int_equal(got_seq, seq);
	assert_int_equal(got_prev, prev);
	return seq;
}

/* Append regions [from, to) as r0000000.., PER_REQ events per request. */
static void append_regions(struct fx *f, size_t from, size_t to, uint64_t *first_seq)
{
	char id[32], region[32];

	for (size_t i = from; i < to;) {
		size_t n = to - i < PER_REQ ? to - i : PER_REQ;

		for (size_t j = 0; j < n; j++) {
			snprintf(id, sizeof(id), "e%07zu", i + j);
			snprintf(region, sizeof(region), "r%07zu", i + j);
			f->in[j].buf = f->buf[j];
			f->in[j].len = mkmove(f->buf[j], sizeof(f->buf[j]), id, region);
			f->in[j].priority = 0;
		}
		assert_int_equal(evlog_client_append(f->c, f->in, n, f->seqs, f->errs), MMO_OK);
		for (size_t j = 0; j < n; j++)
			assert_int_equal(f->errs[j], MMO_OK);
		if (i == 0 && first_seq)
			*first_seq = f->seqs[0];
		i += n;
	}
}

static void a_million_regions_keep_the_table_at_its_cap_and_prev_seqs_right(void **state)
{
	struct fx *f = *state;
	uint64_t seq = 0, prev = 0, k, r0_seq = 0, probes = 0;
	char id[32];

	/* Slow joiner: append "keep" events until the bus delivers one. */
	for (;;) {
		snprintf(id, sizeof(id), "probe-%llu", (unsigned long long)probes++);
		k = append_one(f, id, "keep");
		if (recv_region(f, "keep", 100, &seq, &prev)) {
			assert_int_equal(seq, k);
			break;
		}
		assert_true(probes < 100);
	}
	/* In the table: the previous seq comes from it. */
	k = expect_prev(f, "keep-1", "keep", k);

	/* Half a million made-up regions: "keep" is evicted (cap 65,536). */
	append_regions(f, 0, NREGIONS / 2, &r0_seq);
	assert_int_equal(r0_seq, k + 1);
	assert_true(recv_region(f, "r0000000", 5000, &seq, &prev));
	assert_int_equal(seq, r0_seq);
	assert_int_equal(prev, 0);
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions"), EVLOG_BUS_REGIONS_MAX);
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions_evicted_total"),
	                 1 + NREGIONS / 2 - EVLOG_BUS_REGIONS_MAX);
	/* Seen again after eviction: re-seeded from the log, same answer. */
	k = expect_prev(f, "keep-2", "keep", k);
	k = expect_prev(f, "keep-3", "keep", k); /* and kept again */

	append_regions(f, NREGIONS / 2, NREGIONS, NULL);
	k = expect_prev(f, "keep-4", "keep", k);
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions"), EVLOG_BUS_REGIONS_MAX);
	/* 1,000,001 distinct regions, and "keep" came back twice after being
	 * evicted (keep-2 and keep-4): 1,000,003 insertions into a full table. */
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions_evicted_total"),
	                 NREGIONS + 1 + 2 - EVLOG_BUS_REGIONS_MAX);

	/* The first made-up region, long evicted: its previous seq is its one
	 * event, found in the region index. */
	expect_prev(f, "e-again", "r0000000", r0_seq);
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions"), EVLOG_BUS_REGIONS_MAX);
	assert_int_equal(wire_stat(f, "mmo_log_bus_regions_evicted_total"),
	                 NREGIONS + 1 + 3 - EVLOG_BUS_REGIONS_MAX);
	assert_int_equal(wire_stat(f, "mmo_log_events_appended_total"), probes + 4 + NREGIONS + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        a_million_regions_keep_the_table_at_its_cap_and_prev_seqs_right, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
