/* test_ingest.c - the log's ingest server (log/server.c) and its client
 * (log/client.c) over real ZeroMQ sockets: appends, hostile frames from raw
 * DEALER and REQ sockets with their exact statuses, backpressure, the read,
 * head and stats ops, idempotency over the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "log/evlog.h"
#include "log/wire.h"
#include "schemas/mmo_be.h"
#include "testsupport.h"

/* ------------------------------------------------------------ helpers */

struct fx {
	char dir[512];
	char ep[128];
	evlog *l;
	void *ctx;
	evlog_server *srv;
	evlog_client *c;
};

struct evbuf {
	uint8_t b[512];
	size_t n;
};

/* A player.move (or any type name with a move body) with the given ids. */
static size_t mk(uint8_t *buf, size_t cap, const char *type, const char *id, const char *player,
                 const char *region, double x)
{
	Mmo__Event ev = MMO__EVENT__INIT;
	Mmo__Vec3 pos = MMO__VEC3__INIT;
	Mmo__PlayerMove mv = MMO__PLAYER_MOVE__INIT;
	size_t n;

	ev.event_id = (char *)(id ? id : "");
	ev.type = (char *)type;
	ev.player_id = (char *)(player ? player : "");
	ev.region_id = (char *)(region ? region : "");
	pos.x = x;
	mv.position = &pos;
	ev.body_case = MMO__EVENT__BODY_PLAYER_MOVE;
	ev.player_move = &mv;
	n = mmo__event__get_packed_size(&ev);
	assert_true(n <= cap);
	assert_int_equal(mmo__event__pack(&ev, buf), n);
	return n;
}

static void mkmove(struct evbuf *e, const char *id, const char *region, double x)
{
	e->n = mk(e->b, sizeof(e->b), "player.move", id, "p1", region, x);
}

/* A world.reject whose detail is len bytes (too big past 64 KiB). */
static uint8_t *mkbig(size_t textlen, const char *id, size_t *len)
{
	Mmo__Event ev = MMO__EVENT__INIT;
	Mmo__WorldReject rj = MMO__WORLD_REJECT__INIT;
	char *text = malloc(textlen + 1);
	uint8_t *buf;

	assert_non_null(text);
	memset(text, 'y', textlen);
	text[textlen] = 0;
	ev.event_id = (char *)id;
	ev.type = "world.reject";
	rj.reason = "test";
	rj.detail = text;
	ev.body_case = MMO__EVENT__BODY_WORLD_REJECT;
	ev.world_reject = &rj;
	*len = mmo__event__get_packed_size(&ev);
	buf = malloc(*len);
	assert_non_null(buf);
	mmo__event__pack(&ev, buf);
	free(text);
	return buf;
}

static struct evlog_in in_of(const struct evbuf *e)
{
	return (struct evlog_in){e->b, e->n, 0};
}

static void log_open(struct fx *f)
{
	struct evlog_opts o = {.dir = f->dir, .nosync = true};

	assert_int_equal(evlog_open(&o, &f->l, NULL, 0), MMO_OK);
}

static void server_start(struct fx *f, size_t queue_max)
{
	struct evlog_server_opts so = {
	    .log = f->l, .zctx = f->ctx, .ingest = f->ep, .queue_max = queue_max};
	char msg[256] = "";
	int err;

	/* Another process may have taken the free port since: retry with a
	 * new one unless a client already connected to this one. */
	for (int i = 0; i < 50; i++) {
		err = evlog_server_start(&so, &f->srv, msg, sizeof(msg));
		if (err != MMO_EIO)
			break;
		if (!strncmp(f->ep, "tcp:", 4) && !f->c) {
			snprintf(f->ep, sizeof(f->ep), "tcp://127.0.0.1:%d", ts_free_port());
			so.ingest = f->ep;
		}
		usleep(20 * 1000);
	}
	assert_int_equal(err, MMO_OK);
}

static int setup_common(void **state, bool tcp)
{
	struct fx *f = calloc(1, sizeof(*f));
	static int inproc_n;

	if (!f || ts_tmpdir(f->dir, sizeof(f->dir)))
		return -1;
	if (tcp)
		snprintf(f->ep, sizeof(f->ep), "tcp://127.0.0.1:%d", ts_free_port());
	else
		snprintf(f->ep, sizeof(f->ep), "inproc://ingest-%d", ++inproc_n);
	f->ctx = zmq_ctx_new();
	if (!f->ctx)
		return -1;
	*state = f;
	return 0;
}

/* A log, a server on tcp and a client. */
static int setup_tcp(void **state)
{
	struct fx *f;

	if (setup_common(state, true))
		return -1;
	f = *state;
	log_open(f);
	server_start(f, 0);
	return evlog_client_open(f->ctx, f->ep, 5000, &f->c) == MMO_OK ? 0 : -1;
}

static int setup_inproc(void **state)
{
	struct fx *f;

	if (setup_common(state, false))
		return -1;
	f = *state;
	log_open(f);
	server_start(f, 0);
	return evlog_client_open(f->ctx, f->ep, 5000, &f->c) == MMO_OK ? 0 : -1;
}

/* Only the folder, the context and the endpoint: the test starts the rest. */
static int setup_bare(void **state)
{
	return setup_common(state, false);
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

static uint64_t log_head(struct fx *f)
{
	uint64_t h = 12345;

	assert_int_equal(evlog_head(f->l, &h, NULL), MMO_OK);
	return h;
}

static void *raw_sock(struct fx *f, int type)
{
	void *s = zmq_socket(f->ctx, type);
	int linger = 0, tmo = 5000;

	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_connect(s, f->ep), 0);
	return s;
}

/* Send n frames as one message. */
static void send_frames(void *s, const void *const *p, const size_t *len, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(zmq_send(s, p[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0),
		                 (int)len[i]);
}

struct reply {
	int nframes;
	uint8_t hdr[WIRE_HDR_LEN];
	size_t hdrlen;
	uint8_t body[16384];
	size_t bodylen;
	unsigned op;
	uint32_t req_id;
	uint32_t status;
};

/* Receive one whole reply: its header frame and its second frame. */
static void recv_reply(void *s, struct reply *r)
{
	int more = 1;
	size_t sz = sizeof(more);

	memset(r, 0, sizeof(*r));
	while (more) {
		uint8_t buf[16384];
		int n = zmq_recv(s, buf, sizeof(buf), 0);

		assert_true(n >= 0); /* no timeout */
		if (r->nframes == 0) {
			r->hdrlen = (size_t)n;
			memcpy(r->hdr, buf, n < WIRE_HDR_LEN ? (size_t)n : WIRE_HDR_LEN);
		} else if (r->nframes == 1) {
			r->bodylen = (size_t)n;
			memcpy(r->body, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
		}
		r->nframes++;
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
	}
	assert_int_equal(r->hdrlen, WIRE_HDR_LEN);
	assert_int_equal(r->hdr[0], 'M');
	assert_int_equal(r->hdr[1], 'L');
	assert_int_equal(r->hdr[2], WIRE_VERSION);
	/* A reply's byte 12 and the 3 pad bytes are zero. */
	assert_int_equal(r->hdr[12] | r->hdr[13] | r->hdr[14] | r->hdr[15], 0);
	r->op = r->hdr[3];
	r->req_id = mmo_be32_get(r->hdr + 4);
	r->status = mmo_be32_get(r->hdr + 8);
}

/* No further message is waiting on s (the server answered exactly once). */
static void expect_silence(void *s, int ms)
{
	zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};

	assert_int_equal(zmq_poll(&pi, 1, ms), 0);
}

static void expect_status(struct reply *r, unsigned op, uint32_t req_id, int status)
{
	assert_int_equal(r->op, op);
	assert_int_equal(r->req_id, req_id);
	assert_int_equal(r->status, status);
	assert_int_equal(r->nframes, 1); /* a non-zero status has no further frames */
}

/* A status-0 reply with one frame of n results. */
static void expect_status_ok_results(struct reply *r, unsigned op, uint32_t req_id, size_t n)
{
	assert_int_equal(r->op, op);
	assert_int_equal(r->req_id, req_id);
	assert_int_equal(r->status, MMO_OK);
	assert_int_equal(r->nframes, 2);
	assert_int_equal(r->bodylen, n * WIRE_RESULT_LEN);
}

/* The per-event result i of an append reply. */
static void expect_result(struct reply *r, size_t i, uint64_t seq, int err)
{
	assert_true(r->bodylen >= (i + 1) * WIRE_RESULT_LEN);
	assert_int_equal(mmo_be64_get(r->body + i * WIRE_RESULT_LEN), seq);
	assert_int_equal(mmo_be32_get(r->body + i * WIRE_RESULT_LEN + 8), err);
}

/* Append one good event through the client and expect seq. */
static void append_good(struct fx *f, const char *id, uint64_t seq)
{
	struct evbuf e;
	struct evlog_in in;
	uint64_t s = 0;
	int err = -1;

	mkmove(&e, id, "r1", 1);
	in = in_of(&e);
	assert_int_equal(evlog_client_append(f->c, &in, 1, &s, &err), MMO_OK);
	assert_int_equal(err, MMO_OK);
	assert_int_equal(s, seq);
}

static void verify_ok(struct fx *f, uint64_t records)
{
	struct evlog_verify_result res;

	assert_int_equal(evlog_verify(f->l, 0, 0, NULL, true, NULL, NULL, &res), MMO_OK);
	assert_int_equal(res.checked, records);
}

/* A counter from the stats op. The writer thread answers it after the
 * commits it has acked, so unlike evlog_server_stats() (updated just after
 * the acks go out) it never lags a reply the client already has. */
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

/* ------------------------------------------------------------ appends */

static void client_appends_single_and_multi_event_requests_in_seq_order(void **state)
{
	struct fx *f = *state;
	struct evbuf e[5];
	struct evlog_in in[5];
	uint64_t seqs[5];
	int errs[5];
	char id[32];
	uint64_t head = 0;

	append_good(f, "one", 1);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "multi-%d", i);
		mkmove(&e[i], id, i % 2 ? "r1" : "r2", i);
		in[i] = in_of(&e[i]);
	}
	assert_int_equal(evlog_client_append(f->c, in, 5, seqs, errs), MMO_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(errs[i], MMO_OK);
		assert_int_equal(seqs[i], 2 + (uint64_t)i);
	}
	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, 6);
	assert_int_equal(log_head(f), 6);
	/* The bytes stored are the bytes sent. */
	uint8_t raw[1024];
	size_t len;
	assert_int_equal(evlog_get(f->l, 4, raw, sizeof(raw), &len), MMO_OK);
	assert_int_equal(len, EVLOG_HDR_LEN + e[2].n);
	assert_memory_equal(raw + EVLOG_HDR_LEN, e[2].b, e[2].n);
	assert_int_equal(evlog_client_append(f->c, in, 0, seqs, errs), MMO_EINVAL);
	verify_ok(f, 6);
}

static void duplicate_over_the_wire_returns_the_original_seq(void **state)
{
	struct fx *f = *state;
	struct evbuf a, a2;
	struct evlog_in in[2];
	uint64_t seqs[2];
	int errs[2];
	struct evlog_stats st;

	append_good(f, "first", 1);
	mkmove(&a, "dup-x", "r1", 7);
	mkmove(&a2, "dup-x", "r1", 8);
	in[0] = in_of(&a);
	assert_int_equal(evlog_client_append(f->c, in, 1, seqs, errs), MMO_OK);
	assert_int_equal(seqs[0], 2);
	append_good(f, "third", 3);
	assert_int_equal(evlog_client_append(f->c, in, 1, seqs, errs), MMO_OK);
	assert_int_equal(errs[0], MMO_OK);
	assert_int_equal(seqs[0], 2);
	in[1] = in_of(&a2);
	assert_int_equal(evlog_client_append(f->c, in, 2, seqs, errs), MMO_OK);
	assert_int_equal(errs[0], MMO_OK);
	assert_int_equal(seqs[0], 2);
	assert_int_equal(errs[1], MMO_ECONFLICT);
	assert_int_equal(seqs[1], 0);
	assert_int_equal(log_head(f), 3);
	assert_int_equal(wire_stat(f, "mmo_log_events_appended_total"), 3);
	assert_int_equal(wire_stat(f, "mmo_log_events_duplicate_total"), 2);
	assert_int_equal(wire_stat(f, "mmo_log_events_rejected_total"), 1);
	assert_int_equal(wire_stat(f, "mmo_log_head_seq"), 3);
	evlog_server_stats(f->srv, &st);
	assert_int_equal(st.appended, 3);
}

/* ------------------------------------------------------------ hostile frames */

static void empty_event_frame_gets_a_per_event_malformed(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf e;
	struct reply r;

	mkmove(&e, "after-empty", "r1", 1);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 7, 2, 3);
	send_frames(s, (const void *[]){hdr, "", e.b}, (size_t[]){WIRE_HDR_LEN, 0, e.n}, 3);
	recv_reply(s, &r);
	assert_int_equal(r.op, WIRE_OP_APPEND);
	assert_int_equal(r.req_id, 7);
	assert_int_equal(r.status, MMO_OK);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.bodylen, 2 * WIRE_RESULT_LEN);
	expect_result(&r, 0, 0, MMO_EMALFORMED);
	expect_result(&r, 1, 1, MMO_OK);
	expect_silence(s, 50);
	zmq_close(s);
	assert_int_equal(log_head(f), 1);
}

static void truncated_header_gets_eproto_with_req_id_0(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	struct evbuf e;
	struct reply r;

	mkmove(&e, "x", "r1", 1);
	send_frames(s, (const void *[]){"ML\x01\x01\x00"}, (size_t[]){5}, 1);
	recv_reply(s, &r);
	expect_status(&r, 0, 0, MMO_EPROTO);
	/* With event frames after it: still one reply, and they are not appended. */
	send_frames(s, (const void *[]){"ML\x01\x01\x00", e.b, e.b}, (size_t[]){5, e.n, e.n}, 3);
	recv_reply(s, &r);
	expect_status(&r, 0, 0, MMO_EPROTO);
	expect_silence(s, 50);
	zmq_close(s);
	append_good(f, "ok-after", 1);
}

static void wrong_magic_version_or_op_gets_eproto_with_the_req_id_echoed(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf e;
	struct reply r;
	const void *p[2];
	size_t len[2] = {WIRE_HDR_LEN, 0};

	mkmove(&e, "x", "r1", 1);
	p[0] = hdr;
	p[1] = e.b;
	len[1] = e.n;

	/* A wrong magic: the req_id is still echoed (op 0), so a DEALER with
	 * several requests in flight can match the reply. */
	wire_hdr_put(hdr, WIRE_OP_APPEND, 42, 1, 3);
	hdr[0] = 'X';
	send_frames(s, p, len, 2);
	recv_reply(s, &r);
	expect_status(&r, 0, 42, MMO_EPROTO);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 0xA1B2C3D4u, 1, 3);
	hdr[1] = 'X';
	send_frames(s, p, len, 2);
	recv_reply(s, &r);
	expect_status(&r, 0, 0xA1B2C3D4u, MMO_EPROTO);

	wire_hdr_put(hdr, WIRE_OP_APPEND, 43, 1, 3);
	hdr[2] = 2; /* version */
	send_frames(s, p, len, 2);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 43, MMO_EPROTO);

	wire_hdr_put(hdr, 9, 44, 1, 3); /* op */
	send_frames(s, p, len, 2);
	recv_reply(s, &r);
	expect_status(&r, 9, 44, MMO_EPROTO);

	wire_hdr_put(hdr, 0, 45, 1, 3); /* op 0 */
	send_frames(s, p, len, 1);
	recv_reply(s, &r);
	expect_status(&r, 0, 45, MMO_EPROTO);

	/* A 17-byte header. */
	uint8_t longhdr[WIRE_HDR_LEN + 1];
	wire_hdr_put(longhdr, WIRE_OP_HEAD, 46, 0, 0);
	longhdr[WIRE_HDR_LEN] = 0;
	send_frames(s, (const void *[]){longhdr}, (size_t[]){sizeof(longhdr)}, 1);
	recv_reply(s, &r);
	expect_status(&r, 0, 46, MMO_EPROTO); /* the 16 header bytes are there */
	expect_silence(s, 50);
	zmq_close(s);
	assert_int_equal(log_head(f), 0);
	append_good(f, "ok-after", 1);
}

static void append_count_0_gets_eproto_and_2000_gets_etoobig(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf e;
	struct reply r;

	mkmove(&e, "c0", "r1", 1);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 50, 0, 3);
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 50, MMO_EPROTO);
	send_frames(s, (const void *[]){hdr, e.b}, (size_t[]){WIRE_HDR_LEN, e.n}, 2);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 50, MMO_EPROTO);

	wire_hdr_put(hdr, WIRE_OP_APPEND, 51, 2000, 3);
	send_frames(s, (const void *[]){hdr, e.b, e.b}, (size_t[]){WIRE_HDR_LEN, e.n, e.n}, 3);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 51, MMO_ETOOBIG);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 52, EVLOG_REQ_MAX + 1, 1); /* critical too */
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 52, MMO_ETOOBIG);
	expect_silence(s, 50);
	zmq_close(s);
	assert_int_equal(log_head(f), 0);
	append_good(f, "ok-after", 1);
}

static void frame_count_not_matching_the_header_gets_eproto_and_appends_nothing(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf a, b, c;
	struct reply r;
	uint64_t seq;

	mkmove(&a, "fc-a", "r1", 1);
	mkmove(&b, "fc-b", "r1", 2);
	mkmove(&c, "fc-c", "r1", 3);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 60, 3, 3);
	send_frames(s, (const void *[]){hdr, a.b, b.b}, (size_t[]){WIRE_HDR_LEN, a.n, b.n}, 3);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 60, MMO_EPROTO);

	wire_hdr_put(hdr, WIRE_OP_APPEND, 61, 2, 1);
	send_frames(s, (const void *[]){hdr, a.b, b.b, c.b},
	            (size_t[]){WIRE_HDR_LEN, a.n, b.n, c.n}, 4);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 61, MMO_EPROTO);
	expect_silence(s, 50);
	zmq_close(s);
	assert_int_equal(log_head(f), 0);
	assert_int_equal(evlog_find_id(f->l, "fc-a", &seq), MMO_ENOTFOUND);
	assert_int_equal(evlog_find_id(f->l, "fc-c", &seq), MMO_ENOTFOUND);
	append_good(f, "ok-after", 1);
}

static void priority_9_gets_epriority(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf e;
	struct reply r;

	mkmove(&e, "p9", "r1", 1);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 70, 1, 9);
	send_frames(s, (const void *[]){hdr, e.b}, (size_t[]){WIRE_HDR_LEN, e.n}, 2);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 70, MMO_EPRIORITY);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 71, 1, 5);
	send_frames(s, (const void *[]){hdr, e.b}, (size_t[]){WIRE_HDR_LEN, e.n}, 2);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 71, MMO_EPRIORITY);
	/* 0 reads as medium and is accepted. */
	wire_hdr_put(hdr, WIRE_OP_APPEND, 72, 1, 0);
	send_frames(s, (const void *[]){hdr, e.b}, (size_t[]){WIRE_HDR_LEN, e.n}, 2);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	expect_result(&r, 0, 1, MMO_OK);
	zmq_close(s);
	assert_int_equal(log_head(f), 1);
}

static void oversized_and_garbage_events_get_per_event_errors(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                                  0xff, 0xff, 0xff, 0xff, 0x01};
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf a, b;
	struct reply r;
	size_t biglen;
	uint8_t *big = mkbig(70 * 1000, "big-70k", &biglen);

	assert_true(biglen > MMO_RECORD_MAX);
	mkmove(&a, "around-1", "r1", 1);
	mkmove(&b, "around-2", "r1", 2);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 80, 4, 2);
	send_frames(s, (const void *[]){hdr, a.b, big, garbage, b.b},
	            (size_t[]){WIRE_HDR_LEN, a.n, biglen, sizeof(garbage), b.n}, 5);
	recv_reply(s, &r);
	assert_int_equal(r.op, WIRE_OP_APPEND);
	assert_int_equal(r.req_id, 80);
	assert_int_equal(r.status, MMO_OK);
	assert_int_equal(r.bodylen, 4 * WIRE_RESULT_LEN);
	expect_result(&r, 0, 1, MMO_OK);
	expect_result(&r, 1, 0, MMO_ETOOBIG);
	expect_result(&r, 2, 0, MMO_EMALFORMED);
	expect_result(&r, 3, 2, MMO_OK);
	free(big);
	zmq_close(s);
	assert_int_equal(log_head(f), 2);
	verify_ok(f, 2);
}

static void req_socket_is_answered_with_its_delimiter(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_REQ);
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf e;
	struct reply r;

	mkmove(&e, "via-req", "r1", 1);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 90, 1, 3);
	send_frames(s, (const void *[]){hdr, e.b}, (size_t[]){WIRE_HDR_LEN, e.n}, 2);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	assert_int_equal(r.req_id, 90);
	expect_result(&r, 0, 1, MMO_OK);

	/* Hostile over REQ: each still gets exactly one reply. */
	wire_hdr_put(hdr, WIRE_OP_APPEND, 91, 0, 3);
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 91, MMO_EPROTO);
	send_frames(s, (const void *[]){"ML"}, (size_t[]){2}, 1);
	recv_reply(s, &r);
	expect_status(&r, 0, 0, MMO_EPROTO);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 92, 1, 3);
	send_frames(s, (const void *[]){hdr, ""}, (size_t[]){WIRE_HDR_LEN, 0}, 2);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	expect_result(&r, 0, 0, MMO_EMALFORMED);

	/* Head over REQ. */
	wire_hdr_put(hdr, WIRE_OP_HEAD, 93, 0, 0);
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	assert_int_equal(r.bodylen, 8 + EVLOG_HASH_LEN);
	assert_int_equal(mmo_be64_get(r.body), 1);
	zmq_close(s);
}

static void server_survives_every_hostile_request_and_the_log_verifies(void **state)
{
	struct fx *f = *state;
	void *d = raw_sock(f, ZMQ_DEALER);
	static const uint8_t garbage[] = {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
	uint8_t hdr[WIRE_HDR_LEN];
	struct evbuf g[4];
	struct reply r;
	size_t biglen;
	uint8_t *big = mkbig(70 * 1024, "big", &biglen);
	uint64_t good = 0;
	char id[32];

	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "surv-%d", i);
		mkmove(&g[i], id, "r1", i);
	}
	for (int round = 0; round < 3; round++) {
		/* empty frame, garbage, too big, with one good event */
		wire_hdr_put(hdr, WIRE_OP_APPEND, 1, 4, 3);
		send_frames(d, (const void *[]){hdr, "", garbage, big, g[round].b},
		            (size_t[]){WIRE_HDR_LEN, 0, sizeof(garbage), biglen, g[round].n}, 5);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_OK);
		expect_result(&r, 0, 0, MMO_EMALFORMED);
		expect_result(&r, 1, 0, MMO_EMALFORMED);
		expect_result(&r, 2, 0, MMO_ETOOBIG);
		expect_result(&r, 3, ++good, MMO_OK);
		/* truncated header, wrong magic, count 0, 2000, short, priority 9 */
		send_frames(d, (const void *[]){"MLxx", g[3].b}, (size_t[]){4, g[3].n}, 2);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_EPROTO);
		wire_hdr_put(hdr, WIRE_OP_APPEND, 2, 0, 3);
		send_frames(d, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_EPROTO);
		wire_hdr_put(hdr, WIRE_OP_APPEND, 3, 2000, 3);
		send_frames(d, (const void *[]){hdr, g[3].b}, (size_t[]){WIRE_HDR_LEN, g[3].n}, 2);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_ETOOBIG);
		wire_hdr_put(hdr, WIRE_OP_APPEND, 4, 3, 3);
		send_frames(d, (const void *[]){hdr, g[3].b, g[3].b},
		            (size_t[]){WIRE_HDR_LEN, g[3].n, g[3].n}, 3);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_EPROTO);
		wire_hdr_put(hdr, WIRE_OP_APPEND, 5, 1, 9);
		send_frames(d, (const void *[]){hdr, g[3].b}, (size_t[]){WIRE_HDR_LEN, g[3].n}, 2);
		recv_reply(d, &r);
		assert_int_equal(r.status, MMO_EPRIORITY);
		/* a read with a bad from frame, and with too many frames */
		wire_hdr_put(hdr, WIRE_OP_READ, 6, 0, 0);
		send_frames(d, (const void *[]){hdr, "1234"}, (size_t[]){WIRE_HDR_LEN, 4}, 2);
		recv_reply(d, &r);
		expect_status(&r, WIRE_OP_READ, 6, MMO_EPROTO);
		send_frames(d, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
		recv_reply(d, &r);
		expect_status(&r, WIRE_OP_READ, 6, MMO_EPROTO);
		send_frames(d, (const void *[]){hdr, "12345678", "r1", "x"},
		            (size_t[]){WIRE_HDR_LEN, 8, 2, 1}, 4);
		recv_reply(d, &r);
		expect_status(&r, WIRE_OP_READ, 6, MMO_EPROTO);
		send_frames(d, (const void *[]){hdr, "12345678", "bad region"},
		            (size_t[]){WIRE_HDR_LEN, 8, 10}, 3);
		recv_reply(d, &r);
		expect_status(&r, WIRE_OP_READ, 6, MMO_EBADID);
	}
	expect_silence(d, 50);
	zmq_close(d);
	free(big);

	/* Still serving normally. */
	append_good(f, "normal-after", good + 1);
	good++;
	uint64_t head;
	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, good);
	assert_int_equal(log_head(f), good);
	verify_ok(f, good);
}

static void message_over_1_mib_drops_only_that_peer(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN];
	size_t hugelen = (1 << 20) + 4096;
	uint8_t *huge = calloc(1, hugelen);

	assert_non_null(huge);
	wire_hdr_put(hdr, WIRE_OP_APPEND, 100, 1, 3);
	send_frames(s, (const void *[]){hdr, huge}, (size_t[]){WIRE_HDR_LEN, hugelen}, 2);
	expect_silence(s, 300);
	zmq_close(s);
	free(huge);
	append_good(f, "others-go-on", 1);
	verify_ok(f, 1);
}

/* ZeroMQ bounds each frame, not the message: 1,024 frames of 64 KiB would
 * be 64 MiB in one request. The log refuses a request past 1 MiB of event
 * bytes as a whole. */
static void request_over_1_mib_in_frames_under_64_kib_gets_too_big(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	enum { N = 17 };
	uint8_t hdr[WIRE_HDR_LEN], *ev[N];
	const void *p[N + 1];
	size_t len[N + 1], total = 0;
	struct reply r;
	char id[32];

	p[0] = hdr;
	len[0] = WIRE_HDR_LEN;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "big-%02d", i);
		ev[i] = mkbig(62000, id, &len[i + 1]);
		p[i + 1] = ev[i];
		total += len[i + 1];
	}
	assert_true(len[1] < 65536);
	assert_true(total > EVLOG_REQ_BYTES_MAX);
	assert_true(total - len[N] <= EVLOG_REQ_BYTES_MAX);

	/* 17 frames, over 1 MiB together: too_big, nothing appended. */
	wire_hdr_put(hdr, WIRE_OP_APPEND, 70, N, 3);
	send_frames(s, p, len, N + 1);
	recv_reply(s, &r);
	expect_status(&r, WIRE_OP_APPEND, 70, MMO_ETOOBIG);
	expect_silence(s, 50);
	assert_int_equal(log_head(f), 0);

	/* The first 16 are under 1 MiB: taken, each refused per event (its
	 * text is over 256 bytes), so the reply has 16 results. */
	wire_hdr_put(hdr, WIRE_OP_APPEND, 71, N - 1, 3);
	send_frames(s, p, len, N);
	recv_reply(s, &r);
	expect_status_ok_results(&r, WIRE_OP_APPEND, 71, N - 1);
	for (int i = 0; i < N - 1; i++)
		expect_result(&r, (size_t)i, 0, MMO_ETOOBIG);
	expect_silence(s, 50);
	for (int i = 0; i < N; i++)
		free(ev[i]);
	zmq_close(s);
	assert_int_equal(log_head(f), 0);
	append_good(f, "after-big", 1);
	verify_ok(f, 1);
}

/* The pending queue is bounded in bytes as well as events: past
 * queue_bytes_max, medium requests get busy while critical ones queue. */
static void queue_past_its_byte_cap_answers_busy_to_medium_but_never_to_critical(void **state)
{
	struct fx *f = *state;
	enum { NREQ = 44, PER = 10 };
	struct evbuf e[NREQ][PER];
	uint8_t hdr[NREQ][WIRE_HDR_LEN];
	const void *p[PER + 1];
	size_t len[PER + 1], req_bytes = 0;
	int status[NREQ + 1];
	size_t ok = 0, busy = 0, ok_critical = 0;
	char id[32], msg[256];
	struct reply r;
	void *s;

	for (int i = 0; i < NREQ; i++) {
		for (int j = 0; j < PER; j++) {
			snprintf(id, sizeof(id), "qb-%03d-%02d", i, j);
			mkmove(&e[i][j], id, "r1", 1);
		}
	}
	for (int j = 0; j < PER; j++)
		req_bytes += e[0][j].n;
	/* Pipeline before the server binds (inproc queues them), so the first
	 * drain sees all 44: requests 11, 22, 33, 44 are critical. */
	log_open(f);
	s = raw_sock(f, ZMQ_DEALER);
	for (int i = 0; i < NREQ; i++) {
		bool critical = (i + 1) % 11 == 0;

		wire_hdr_put(hdr[i], WIRE_OP_APPEND, (uint32_t)i + 1, PER,
		             critical ? MMO_PRIO_CRITICAL : MMO_PRIO_MEDIUM);
		p[0] = hdr[i];
		len[0] = WIRE_HDR_LEN;
		for (int j = 0; j < PER; j++) {
			assert_int_equal(e[i][j].n, e[0][j].n);
			p[j + 1] = e[i][j].b;
			len[j + 1] = e[i][j].n;
		}
		send_frames(s, p, len, PER + 1);
	}
	struct evlog_server_opts so = {.log = f->l,
	                               .zctx = f->ctx,
	                               .ingest = f->ep,
	                               .queue_max = 100000,
	                               .queue_bytes_max = 10 * req_bytes};
	assert_int_equal(evlog_server_start(&so, &f->srv, msg, sizeof(msg)), MMO_OK);
	for (int i = 0; i < NREQ; i++) {
		recv_reply(s, &r);
		assert_int_equal(r.op, WIRE_OP_APPEND);
		assert_true(r.req_id >= 1 && r.req_id <= NREQ);
		status[r.req_id] = (int)r.status;
		if (r.status == MMO_OK) {
			ok++;
			ok_critical += r.req_id % 11 == 0;
		} else {
			assert_int_equal(r.status, MMO_EBUSY);
			assert_int_equal(r.req_id % 11 != 0, true);
			busy++;
		}
	}
	expect_silence(s, 50);
	zmq_close(s);
	/* Exactly 10 medium requests fit in 10 requests' bytes; every
	 * critical one is taken although the queue is full. */
	for (int i = 1; i <= 10; i++)
		assert_int_equal(status[i], MMO_OK);
	assert_int_equal(ok_critical, 4);
	assert_int_equal(ok, 14);
	assert_int_equal(busy, 30);
	assert_int_equal(log_head(f), 14 * PER);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	assert_int_equal(wire_stat(f, "mmo_log_requests_busy_total"), 30);
	verify_ok(f, 14 * PER);
}

/* ------------------------------------------------------------ backpressure */

struct flood {
	size_t n, ok, busy, other, replies;
	uint8_t *seen;  /* replies per req_id */
	uint64_t *seqs; /* OK seq per req_id */
	bool *critical;
};

/* Pipeline n one-event requests (every 10th critical) without waiting. */
static void flood(evlog_client *c, struct flood *fl, size_t n)
{
	char id[32];
	struct evbuf e;

	fl->n = n;
	fl->seen = calloc(n + 1, 1);
	fl->seqs = calloc(n + 1, sizeof(*fl->seqs));
	fl->critical = calloc(n + 1, sizeof(bool));
	assert_non_null(fl->critical);
	for (size_t i = 1; i <= n; i++) {
		struct evlog_in in;

		snprintf(id, sizeof(id), "flood-%zu", i);
		mkmove(&e, id, "r1", (double)i);
		in = in_of(&e);
		fl->critical[i] = i % 10 == 0;
		in.priority = fl->critical[i] ? MMO_PRIO_CRITICAL : MMO_PRIO_MEDIUM;
		assert_int_equal(evlog_client_send(c, (uint32_t)i, &in, 1), MMO_OK);
	}
}

/* Collect every reply of a flood and check it against the log. */

static void flood_collect(struct fx *f, evlog_client *c, struct flood *fl)
{
	while (fl->replies < fl->n) {
		uint32_t id;
		int status, errs[1];
		uint64_t seqs[1];
		size_t k;

		assert_int_equal(evlog_client_recv(c, 10000, &id, &status, seqs, errs, 1, &k),
		                 MMO_OK);
		assert_true(id >= 1 && id <= fl->n);
		assert_int_equal(fl->seen[id], 0); /* exactly one reply each */
		fl->seen[id] = 1;
		fl->replies++;
		if (status == MMO_OK) {
			assert_int_equal(k, 1);
			assert_int_equal(errs[0], MMO_OK);
			fl->seqs[id] = seqs[0];
			fl->ok++;
		} else if (status == MMO_EBUSY) {
			assert_int_equal(k, 0);
			assert_false(fl->critical[id]); /* critical is never busy */
			fl->busy++;
		} else {
			fl->other++;
		}
	}
	/* Nothing more arrives. */
	uint32_t id;
	int status, errs[1];
	uint64_t seqs[1];
	size_t k;
	assert_int_equal(evlog_client_recv(c, 100, &id, &status, seqs, errs, 1, &k), MMO_ETIMEOUT);
	assert_int_equal(fl->other, 0);

	/* The OK seqs are exactly 1..head, each in the log with its own event. */
	uint64_t head = log_head(f);
	uint8_t *hit = calloc(head + 1, 1);
	assert_int_equal(head, fl->ok);
	for (size_t i = 1; i <= fl->n; i++) {
		uint64_t s;
		char id2[32];

		if (!fl->seqs[i])
			continue;
		assert_true(fl->seqs[i] >= 1 && fl->seqs[i] <= head);
		assert_int_equal(hit[fl->seqs[i]], 0);
		hit[fl->seqs[i]] = 1;
		snprintf(id2, sizeof(id2), "flood-%zu", i);
		assert_int_equal(evlog_find_id(f->l, id2, &s), MMO_OK);
		assert_int_equal(s, fl->seqs[i]);
	}
	free(hit);
	verify_ok(f, head);
	free(fl->seen);
	free(fl->seqs);
	free(fl->critical);
}

static void full_queue_answers_busy_to_medium_but_never_to_critical(void **state)
{
	struct fx *f = *state;
	struct flood fl = {0};
	struct evlog_stats st;

	/* Connect and pipeline before the server binds: every request is already
	 * waiting when the writer first drains (inproc queues them), so the
	 * queue of 16 overflows deterministically. */
	log_open(f);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	flood(f->c, &fl, 400);
	server_start(f, 16);
	flood_collect(f, f->c, &fl);
	print_message("inproc flood: %zu ok, %zu busy\n", fl.ok, fl.busy);
	assert_true(fl.busy > 0);
	assert_true(fl.ok >= 16 + 40); /* at least a queue of medium + every critical */
	assert_int_equal(fl.ok + fl.busy, 400);
	assert_int_equal(wire_stat(f, "mmo_log_requests_busy_total"), fl.busy);
	assert_int_equal(wire_stat(f, "mmo_log_events_appended_total"), fl.ok);
	evlog_server_stats(f->srv, &st);
	assert_int_equal(st.busy, fl.busy);
}

static void tcp_flood_gets_exactly_one_reply_per_request(void **state)
{
	struct fx *f = *state;
	struct flood fl = {0};

	snprintf(f->ep, sizeof(f->ep), "tcp://127.0.0.1:%d", ts_free_port());
	log_open(f);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	flood(f->c, &fl, 3000);
	server_start(f, 16);
	flood_collect(f, f->c, &fl);
	print_message("tcp flood: %zu ok, %zu busy\n", fl.ok, fl.busy);
	assert_int_equal(fl.ok + fl.busy, 3000);
	assert_true(fl.ok >= 300); /* every critical one */
}

static void requests_of_one_priority_commit_in_arrival_order(void **state)
{
	struct fx *f = *state;
	enum { NA = 600, NB = 600, NC = 10 };
	struct evbuf *e = calloc(NA + NB + NC, sizeof(*e));
	struct evlog_in *in = calloc(NA + NB + NC, sizeof(*in));
	uint64_t first[3] = {0}, last[3] = {0};
	char id[32];

	assert_non_null(in);
	for (int i = 0; i < NA + NB + NC; i++) {
		snprintf(id, sizeof(id), "order-%d", i);
		mkmove(&e[i], id, "r1", i);
		in[i] = in_of(&e[i]);
	}
	/* A (600), B (600) and C (10), all medium, queued before the server
	 * starts: one batch holds at most 1024 events, so B cannot join A. */
	log_open(f);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	assert_int_equal(evlog_client_send(f->c, 1, in, NA), MMO_OK);
	assert_int_equal(evlog_client_send(f->c, 2, in + NA, NB), MMO_OK);
	assert_int_equal(evlog_client_send(f->c, 3, in + NA + NB, NC), MMO_OK);
	server_start(f, 0);
	for (int i = 0; i < 3; i++) {
		uint32_t rid;
		int status;
		uint64_t seqs[NA];
		int errs[NA];
		size_t k;

		assert_int_equal(evlog_client_recv(f->c, 10000, &rid, &status, seqs, errs, NA, &k),
		                 MMO_OK);
		assert_int_equal(status, MMO_OK);
		assert_true(rid >= 1 && rid <= 3);
		first[rid - 1] = seqs[0];
		last[rid - 1] = seqs[k - 1];
	}
	print_message("A %llu..%llu B %llu..%llu C %llu..%llu\n", (unsigned long long)first[0],
	              (unsigned long long)last[0], (unsigned long long)first[1],
	              (unsigned long long)last[1], (unsigned long long)first[2],
	              (unsigned long long)last[2]);
	assert_int_equal(first[0], 1);
	assert_int_equal(last[0], NA);
	assert_int_equal(first[1], NA + 1);
	assert_int_equal(last[1], NA + NB);
	assert_int_equal(first[2], NA + NB + 1);
	assert_int_equal(last[2], NA + NB + NC);
	free(e);
	free(in);
}

static void critical_request_is_committed_before_earlier_medium_ones(void **state)
{
	struct fx *f = *state;
	struct evbuf e[3];
	struct evlog_in in[3];
	uint64_t seq_of[4] = {0};

	mkmove(&e[0], "med-1", "r1", 1);
	mkmove(&e[1], "med-2", "r1", 2);
	mkmove(&e[2], "crit-3", "r1", 3);
	for (int i = 0; i < 3; i++)
		in[i] = in_of(&e[i]);
	in[2].priority = MMO_PRIO_CRITICAL;
	log_open(f);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(evlog_client_send(f->c, (uint32_t)i + 1, &in[i], 1), MMO_OK);
	server_start(f, 0);
	for (int i = 0; i < 3; i++) {
		uint32_t rid;
		int status, err;
		uint64_t seq;
		size_t k;

		assert_int_equal(evlog_client_recv(f->c, 10000, &rid, &status, &seq, &err, 1, &k),
		                 MMO_OK);
		assert_int_equal(status, MMO_OK);
		seq_of[rid] = seq;
	}
	assert_int_equal(seq_of[3], 1);
	assert_int_equal(seq_of[1], 2);
	assert_int_equal(seq_of[2], 3);
}

static void stop_commits_and_acks_what_was_received(void **state)
{
	struct fx *f = *state;
	struct evbuf e;
	char id[32];
	size_t replies = 0;

	log_open(f);
	server_start(f, 0);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	for (int i = 1; i <= 50; i++) {
		struct evlog_in in;

		snprintf(id, sizeof(id), "stop-%d", i);
		mkmove(&e, id, "r1", i);
		in = in_of(&e);
		assert_int_equal(evlog_client_send(f->c, (uint32_t)i, &in, 1), MMO_OK);
	}
	evlog_server_stop(f->srv);
	f->srv = NULL;
	for (;;) {
		uint32_t rid;
		int status, err;
		uint64_t seq;
		size_t k;

		if (evlog_client_recv(f->c, 500, &rid, &status, &seq, &err, 1, &k) != MMO_OK)
			break;
		assert_int_equal(status, MMO_OK);
		assert_int_equal(seq, rid); /* one client, one priority: arrival order */
		replies++;
	}
	/* Every acked event is in the log, and nothing unacked is. */
	assert_int_equal(log_head(f), replies);
	assert_int_equal(replies, 50);
	verify_ok(f, 50);
}

/* ------------------------------------------------------------ read, head, stats */

struct collect {
	size_t n;
	uint64_t seqs[64];
	uint8_t prev[EVLOG_HASH_LEN];
	bool chain; /* check the chain from prev */
	evlog *l;
};

static int collect_cb(const struct evlog_rec *rec, void *arg)
{
	struct collect *c = arg;
	uint8_t raw[1024], h[EVLOG_HASH_LEN];
	size_t len;

	assert_true(c->n < 64);
	c->seqs[c->n++] = rec->seq;
	assert_int_equal(evlog_get(c->l, rec->seq, raw, sizeof(raw), &len), MMO_OK);
	assert_int_equal(len, rec->raw_len);
	assert_memory_equal(raw, rec->raw, len);
	if (c->chain) {
		evlog_chain_hash(c->prev, rec->seq, rec->raw + EVLOG_HASH_LEN,
		                 rec->raw_len - EVLOG_HASH_LEN, h);
		assert_memory_equal(h, rec->hash, EVLOG_HASH_LEN);
		memcpy(c->prev, h, EVLOG_HASH_LEN);
	}
	return 0;
}

static int stop_at_3(const struct evlog_rec *rec, void *arg)
{
	size_t *n = arg;

	(*n)++;
	return rec->seq == 3 ? 42 : 0;
}

static void read_op_returns_records_from_a_seq_with_max_and_region(void **state)
{
	struct fx *f = *state;
	struct evbuf e[20];
	struct evlog_in in[20];
	uint64_t seqs[20], last = 0, head = 0;
	int errs[20];
	char id[32];
	struct collect c;

	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "rd-%d", i + 1);
		/* seq s: region r1 if odd, r2 if even, none for multiples of 5 */
		mkmove(&e[i], id, (i + 1) % 5 == 0 ? NULL : (i + 1) % 2 ? "r1" : "r2", i);
		in[i] = in_of(&e[i]);
	}
	assert_int_equal(evlog_client_append(f->c, in, 20, seqs, errs), MMO_OK);

	memset(&c, 0, sizeof(c));
	c.l = f->l;
	c.chain = true;
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, collect_cb, &c, &last, &head), MMO_OK);
	assert_int_equal(c.n, 20);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(c.seqs[i], i + 1);
	assert_int_equal(last, 20);
	assert_int_equal(head, 20);

	memset(&c, 0, sizeof(c));
	c.l = f->l;
	assert_int_equal(evlog_client_read(f->c, 15, 0, NULL, collect_cb, &c, &last, &head),
	                 MMO_OK);
	assert_int_equal(c.n, 6);
	assert_int_equal(c.seqs[0], 15);
	assert_int_equal(last, 20);

	memset(&c, 0, sizeof(c));
	c.l = f->l;
	assert_int_equal(evlog_client_read(f->c, 3, 5, NULL, collect_cb, &c, &last, &head), MMO_OK);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.seqs[0], 3);
	assert_int_equal(c.seqs[4], 7);
	assert_int_equal(last, 7);
	assert_int_equal(head, 20);

	memset(&c, 0, sizeof(c));
	c.l = f->l;
	assert_int_equal(evlog_client_read(f->c, 1, 0, "r1", collect_cb, &c, &last, &head), MMO_OK);
	{
		static const uint64_t want[] = {1, 3, 7, 9, 11, 13, 17, 19};
		assert_int_equal(c.n, 8);
		assert_memory_equal(c.seqs, want, sizeof(want));
		assert_int_equal(last, 19);
	}
	memset(&c, 0, sizeof(c));
	c.l = f->l;
	assert_int_equal(evlog_client_read(f->c, 5, 3, "r2", collect_cb, &c, &last, &head), MMO_OK);
	{
		static const uint64_t want[] = {6, 8, 12};
		assert_int_equal(c.n, 3);
		assert_memory_equal(c.seqs, want, sizeof(want));
		assert_int_equal(last, 12);
	}
	/* Past the head; a region nobody has; a bad region. */
	memset(&c, 0, sizeof(c));
	c.l = f->l;
	assert_int_equal(evlog_client_read(f->c, 21, 0, NULL, collect_cb, &c, &last, &head),
	                 MMO_OK);
	assert_int_equal(c.n, 0);
	assert_int_equal(last, 20);
	assert_int_equal(head, 20);
	assert_int_equal(evlog_client_read(f->c, 1, 0, "r9", collect_cb, &c, &last, &head), MMO_OK);
	assert_int_equal(c.n, 0);
	assert_int_equal(last, 0);
	assert_int_equal(evlog_client_read(f->c, 1, 0, "bad region", collect_cb, &c, &last, &head),
	                 MMO_EBADID);
	/* The callback stops the read and its value is returned. */
	size_t calls = 0;
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, stop_at_3, &calls, &last, &head), 42);
	assert_int_equal(calls, 3);
	/* The client still works after that. */
	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, 20);
}

static void read_op_caps_one_reply_at_4096_records(void **state)
{
	struct fx *f = *state;
	enum { N = 1024 };
	struct evbuf *e = calloc(N, sizeof(*e));
	struct evlog_in *in = calloc(N, sizeof(*in));
	uint64_t *seqs = calloc(N, sizeof(*seqs));
	int *errs = calloc(N, sizeof(*errs));
	uint64_t last = 0, head = 0;
	size_t n = 0;
	char id[32];

	assert_non_null(errs);
	for (int b = 0; b < 5; b++) {
		for (int i = 0; i < N; i++) {
			snprintf(id, sizeof(id), "cap-%d-%d", b, i);
			mkmove(&e[i], id, "r1", i);
			in[i] = in_of(&e[i]);
		}
		assert_int_equal(evlog_client_append(f->c, in, N, seqs, errs), MMO_OK);
		assert_int_equal(seqs[N - 1], (uint64_t)(b + 1) * N);
	}
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, stop_at_3, &n, &last, &head), 42);
	n = 0;
	assert_int_equal(evlog_client_read(f->c, 4, 100000, NULL, NULL, NULL, &last, &head),
	                 MMO_OK);
	assert_int_equal(last, 4 + EVLOG_READ_MAX - 1);
	assert_int_equal(head, 5 * N);
	assert_int_equal(evlog_client_read(f->c, last + 1, 0, NULL, NULL, NULL, &last, &head),
	                 MMO_OK);
	assert_int_equal(last, 5 * N);
	free(e);
	free(in);
	free(seqs);
	free(errs);
}

static void head_op_returns_the_head_seq_and_hash(void **state)
{
	struct fx *f = *state;
	void *s = raw_sock(f, ZMQ_DEALER);
	uint8_t hdr[WIRE_HDR_LEN], hash[EVLOG_HASH_LEN], zero[EVLOG_HASH_LEN] = {0};
	struct reply r;
	uint64_t head = 99, hs;

	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, 0);
	wire_hdr_put(hdr, WIRE_OP_HEAD, 5, 0, 0);
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	assert_int_equal(r.nframes, 2);
	assert_int_equal(r.bodylen, 8 + EVLOG_HASH_LEN);
	assert_int_equal(mmo_be64_get(r.body), 0);
	assert_memory_equal(r.body + 8, zero, EVLOG_HASH_LEN);

	append_good(f, "h1", 1);
	append_good(f, "h2", 2);
	send_frames(s, (const void *[]){hdr}, (size_t[]){WIRE_HDR_LEN}, 1);
	recv_reply(s, &r);
	assert_int_equal(mmo_be64_get(r.body), 2);
	assert_int_equal(evlog_head(f->l, &hs, hash), MMO_OK);
	assert_memory_equal(r.body + 8, hash, EVLOG_HASH_LEN);
	/* Extra frames after a head request are ignored: one reply. */
	send_frames(s, (const void *[]){hdr, "junk"}, (size_t[]){WIRE_HDR_LEN, 4}, 2);
	recv_reply(s, &r);
	assert_int_equal(r.status, MMO_OK);
	expect_silence(s, 50);
	zmq_close(s);
	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, 2);
}

static void stats_op_reports_exact_counters(void **state)
{
	struct fx *f = *state;
	struct evbuf e[10], bad;
	struct evlog_in in[10];
	uint64_t seqs[10], last, head;
	int errs[10];
	char id[32], text[8192];

	for (int i = 0; i < 7; i++) {
		snprintf(id, sizeof(id), "st-%d", i);
		mkmove(&e[i], id, "r1", i);
		in[i] = in_of(&e[i]);
	}
	bad.n = mk(bad.b, sizeof(bad.b), "no.such", "st-bad", "p1", NULL, 0);
	in[7] = in_of(&bad);
	in[8] = (struct evlog_in){(const uint8_t *)"\xff\xff", 2, 0};
	in[9] = in[0]; /* a duplicate inside the request */
	assert_int_equal(evlog_client_append(f->c, in, 10, seqs, errs), MMO_OK);
	assert_int_equal(errs[7], MMO_EBADTYPE);
	assert_int_equal(errs[8], MMO_EMALFORMED);
	assert_int_equal(errs[9], MMO_OK);
	assert_int_equal(seqs[9], 1);
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, NULL, NULL, &last, &head), MMO_OK);

	assert_int_equal(evlog_client_stats(f->c, text, sizeof(text)), MMO_OK);
	assert_non_null(strstr(text, "\nmmo_log_events_appended_total 7\n"));
	assert_non_null(strstr(text, "\nmmo_log_events_duplicate_total 1\n"));
	assert_non_null(strstr(text, "\nmmo_log_events_rejected_total 2\n"));
	assert_non_null(strstr(text, "\nmmo_log_head_seq 7\n"));
	assert_non_null(strstr(text, "\nmmo_log_reads_total 1\n"));
	assert_non_null(strstr(text, "\nmmo_log_requests_busy_total 0\n"));
	assert_non_null(strstr(text, "\nmmo_log_batch_events_count 1\n"));
	assert_non_null(strstr(text, "mmo_log_batch_events_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(text, "mmo_log_batch_events_bucket{le=\"8\"} 0\n"));
	assert_non_null(strstr(text, "mmo_log_batch_events_bucket{le=\"16\"} 1\n"));
	assert_int_equal(text[strlen(text) - 1], '\n');

	/* A tiny buffer truncates and still terminates. */
	char tiny[16];
	assert_int_equal(evlog_client_stats(f->c, tiny, sizeof(tiny)), MMO_OK);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	struct evlog_stats st;
	evlog_server_stats(f->srv, &st);
	size_t n = evlog_stats_format(&st, tiny, sizeof(tiny));
	assert_int_equal(n, strlen(tiny));
	assert_true(n < sizeof(tiny));
	assert_int_equal(tiny[n - 1], '\n');
	/* Truncated between lines: whole lines only, a prefix of the full text. */
	char mid[100], full[8192];
	size_t nfull = evlog_stats_format(&st, full, sizeof(full));
	n = evlog_stats_format(&st, mid, sizeof(mid));
	assert_true(n < nfull);
	assert_int_equal(n, strlen(mid));
	assert_int_equal(mid[n - 1], '\n');
	assert_memory_equal(mid, full, n);
	assert_int_equal(full[n - 1], '\n');
}

static void medium_request_larger_than_the_queue_is_taken_when_idle(void **state)
{
	struct fx *f = *state;
	enum { N = 100 };
	struct evbuf e[N];
	struct evlog_in in[N];
	uint64_t seqs[N];
	int errs[N];
	char id[32];

	log_open(f);
	server_start(f, 16);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "wide-%d", i);
		mkmove(&e[i], id, "r1", i);
		in[i] = in_of(&e[i]);
	}
	/* Twice, so that the second one finds the queue empty again. */
	assert_int_equal(evlog_client_append(f->c, in, N, seqs, errs), MMO_OK);
	assert_int_equal(seqs[N - 1], N);
	assert_int_equal(evlog_client_append(f->c, in, N, seqs, errs), MMO_OK);
	assert_int_equal(seqs[N - 1], N); /* duplicates */
}

static void full_map_answers_full_and_the_log_stays_readable(void **state)
{
	struct fx *f = *state;
	struct evlog_opts o = {.dir = f->dir, .map_size = 1 << 20, .nosync = true};
	enum { N = 100 };
	struct evbuf e[N];
	struct evlog_in in[N];
	uint64_t seqs[N], head0 = 0, head = 0, last;
	int errs[N], rc = MMO_OK;
	char id[32], text[8192];

	assert_int_equal(evlog_open(&o, &f->l, NULL, 0), MMO_OK);
	server_start(f, 0);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 5000, &f->c), MMO_OK);
	for (int b = 0; b < 1000; b++) {
		for (int i = 0; i < N; i++) {
			snprintf(id, sizeof(id), "fm-%d-%d", b, i);
			mkmove(&e[i], id, "r1", i);
			in[i] = in_of(&e[i]);
		}
		rc = evlog_client_append(f->c, in, N, seqs, errs);
		if (rc != MMO_OK)
			break;
		head0 = seqs[N - 1];
	}
	assert_int_equal(rc, MMO_EFULL);
	assert_int_equal(evlog_client_head(f->c, &head), MMO_OK);
	assert_int_equal(head, head0);
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, NULL, NULL, &last, &head), MMO_OK);
	assert_int_equal(last, head0 < EVLOG_READ_MAX ? head0 : EVLOG_READ_MAX);
	assert_int_equal(evlog_client_stats(f->c, text, sizeof(text)), MMO_OK);
	assert_non_null(strstr(text, "\nmmo_log_commit_full_total 1\n"));
	verify_ok(f, head0);
}

/* ------------------------------------------------------------ inproc, errors */

static void inproc_endpoint_serves_appends_and_reads(void **state)
{
	struct fx *f = *state;
	struct collect c = {0};
	uint64_t last, head;
	void *s = raw_sock(f, ZMQ_DEALER);
	struct reply r;

	append_good(f, "in-1", 1);
	append_good(f, "in-2", 2);
	c.l = f->l;
	c.chain = true;
	assert_int_equal(evlog_client_read(f->c, 1, 0, NULL, collect_cb, &c, &last, &head), MMO_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(head, 2);
	send_frames(s, (const void *[]){"ML\x01"}, (size_t[]){3}, 1);
	recv_reply(s, &r);
	expect_status(&r, 0, 0, MMO_EPROTO);
	zmq_close(s);
	verify_ok(f, 2);
}

static void server_start_refuses_a_taken_endpoint_and_a_readonly_log(void **state)
{
	struct fx *f = *state;
	struct evlog_server_opts so = {.log = f->l, .zctx = f->ctx, .ingest = f->ep};
	evlog_server *s2 = NULL;
	char msg[256] = "";

	assert_int_equal(evlog_server_start(&so, &s2, msg, sizeof(msg)), MMO_EIO);
	assert_non_null(strstr(msg, f->ep));
	so.ingest = NULL;
	assert_int_equal(evlog_server_start(&so, &s2, msg, sizeof(msg)), MMO_EINVAL);
	assert_int_equal(evlog_server_start(NULL, &s2, NULL, 0), MMO_EINVAL);
	/* A bus endpoint that cannot be bound fails the start too. */
	char ep2[64];
	snprintf(ep2, sizeof(ep2), "tcp://127.0.0.1:%d", ts_free_port());
	so.ingest = ep2;
	so.bus = f->ep;
	assert_int_equal(evlog_server_start(&so, &s2, msg, sizeof(msg)), MMO_EIO);
	assert_non_null(strstr(msg, f->ep));

	/* A read-only log cannot be served (another folder: LMDB allows one
	 * handle per environment and process). */
	char dir2[600];
	struct evlog_opts o = {.dir = dir2};
	evlog *ro;
	snprintf(dir2, sizeof(dir2), "%s/other", f->dir);
	assert_int_equal(evlog_open(&o, &ro, NULL, 0), MMO_OK);
	evlog_close(ro);
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &ro, NULL, 0), MMO_OK);
	snprintf(ep2, sizeof(ep2), "tcp://127.0.0.1:%d", ts_free_port());
	so.log = ro;
	so.bus = NULL;
	assert_int_equal(evlog_server_start(&so, &s2, msg, sizeof(msg)), MMO_EINVAL);
	evlog_close(ro);
}

static void client_times_out_without_a_server(void **state)
{
	struct fx *f = *state;
	evlog_client *c;
	struct evbuf e;
	struct evlog_in in;
	uint64_t seq, head;
	int err;

	mkmove(&e, "lonely", "r1", 1);
	in = in_of(&e);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 200, &c), MMO_OK);
	assert_int_equal(evlog_client_append(c, &in, 1, &seq, &err), MMO_ETIMEOUT);
	assert_int_equal(evlog_client_head(c, &head), MMO_ETIMEOUT);
	evlog_client_close(c);
	assert_int_equal(evlog_client_open(f->ctx, "nonsense://x", 200, &c), MMO_EINVAL);
}

/* A fake log server: receive one request on a ROUTER, return its routing id
 * and req_id. */
static void fake_recv(void *router, uint8_t *route, size_t *route_len, uint32_t *req_id)
{
	uint8_t buf[1024];
	int more = 1, n, i = 0;
	size_t sz = sizeof(more);

	while (more) {
		n = zmq_recv(router, buf, sizeof(buf), 0);
		assert_true(n >= 0);
		if (i == 0) {
			memcpy(route, buf, (size_t)n);
			*route_len = (size_t)n;
		} else if (i == 1) {
			assert_int_equal(n, WIRE_HDR_LEN);
			*req_id = mmo_be32_get(buf + 4);
		}
		i++;
		zmq_getsockopt(router, ZMQ_RCVMORE, &more, &sz);
	}
}

static void fake_reply(void *router, const uint8_t *route, size_t route_len, unsigned op,
                       uint32_t req_id, uint64_t seq, size_t nres)
{
	uint8_t hdr[WIRE_HDR_LEN], res[64] = {0};

	assert_true(nres <= sizeof(res));
	wire_hdr_put(hdr, op, req_id, 0, 0);
	for (int i = 0; i < 8; i++)
		res[i] = (uint8_t)(seq >> (56 - 8 * i));
	assert_true(zmq_send(router, route, route_len, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(router, hdr, WIRE_HDR_LEN, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(router, res, nres, 0) >= 0);
}

static void client_drops_late_and_stray_replies(void **state)
{
	struct fx *f = *state;
	void *router = zmq_socket(f->ctx, ZMQ_ROUTER);
	int linger = 0, tmo = 5000;
	uint8_t route[256];
	size_t route_len;
	uint32_t id1, id2;
	struct evbuf e;
	struct evlog_in in;
	uint64_t seq = 0;
	int err = -1;

	zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(router, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_bind(router, f->ep), 0);
	assert_int_equal(evlog_client_open(f->ctx, f->ep, 300, &f->c), MMO_OK);
	mkmove(&e, "late", "r1", 1);
	in = in_of(&e);

	/* No answer in time. */
	assert_int_equal(evlog_client_append(f->c, &in, 1, &seq, &err), MMO_ETIMEOUT);
	fake_recv(router, route, &route_len, &id1);

	/* The retry: the late reply to the first, a stray head reply with the
	 * retry's id, a reply with a short result frame, then the real one. */
	assert_int_equal(evlog_client_send(f->c, 77, &in, 1), MMO_OK);
	fake_recv(router, route, &route_len, &id2);
	assert_int_equal(id2, 77);
	fake_reply(router, route, route_len, WIRE_OP_APPEND, id1, 111, WIRE_RESULT_LEN);
	fake_reply(router, route, route_len, WIRE_OP_HEAD, id2, 333, 8 + EVLOG_HASH_LEN - 28);
	fake_reply(router, route, route_len, WIRE_OP_APPEND, id2, 222, WIRE_RESULT_LEN);
	{
		uint32_t rid;
		int status, errs[1];
		uint64_t seqs[1];
		size_t k;

		assert_int_equal(evlog_client_recv(f->c, 1000, &rid, &status, seqs, errs, 1, &k),
		                 MMO_OK);
		assert_int_equal(rid, id1); /* the raw receive sees the late one ... */
		assert_int_equal(evlog_client_recv(f->c, 1000, &rid, &status, seqs, errs, 1, &k),
		                 MMO_EPROTO); /* ... a head reply is not an append reply ... */
		assert_int_equal(evlog_client_recv(f->c, 1000, &rid, &status, seqs, errs, 1, &k),
		                 MMO_OK);
		assert_int_equal(rid, 77);
		assert_int_equal(seqs[0], 222);
	}

	/* evlog_client_append skips what is not its reply. */
	uint32_t id3;
	assert_int_equal(evlog_client_append(f->c, &in, 1, &seq, &err), MMO_ETIMEOUT);
	fake_recv(router, route, &route_len, &id3);
	fake_reply(router, route, route_len, WIRE_OP_APPEND, id3 + 1000, 5, WIRE_RESULT_LEN);
	fake_reply(router, route, route_len, WIRE_OP_HEAD, id3 + 1, 5, 40);
	fake_reply(router, route, route_len, WIRE_OP_APPEND, id3 + 1, 444, WIRE_RESULT_LEN);
	assert_int_equal(evlog_client_append(f->c, &in, 1, &seq, &err), MMO_OK);
	assert_int_equal(seq, 444);
	assert_int_equal(err, MMO_OK);
	fake_recv(router, route, &route_len, &id3); /* the request it sent */

	/* A reply with the wrong number of results is a protocol error. */
	fake_reply(router, route, route_len, WIRE_OP_APPEND, id3 + 1, 1, 0);
	{
		struct evlog_in two[2] = {in, in};
		uint64_t seqs[2];
		int errs[2];

		assert_int_equal(evlog_client_append(f->c, two, 2, seqs, errs), MMO_EPROTO);
	}
	zmq_close(router);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        client_appends_single_and_multi_event_requests_in_seq_order, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(duplicate_over_the_wire_returns_the_original_seq,
	                                    setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(empty_event_frame_gets_a_per_event_malformed, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(truncated_header_gets_eproto_with_req_id_0, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        wrong_magic_version_or_op_gets_eproto_with_the_req_id_echoed, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(append_count_0_gets_eproto_and_2000_gets_etoobig,
	                                    setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(
	        frame_count_not_matching_the_header_gets_eproto_and_appends_nothing, setup_tcp,
	        teardown),
	    cmocka_unit_test_setup_teardown(priority_9_gets_epriority, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(oversized_and_garbage_events_get_per_event_errors,
	                                    setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(req_socket_is_answered_with_its_delimiter, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        server_survives_every_hostile_request_and_the_log_verifies, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(message_over_1_mib_drops_only_that_peer, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(request_over_1_mib_in_frames_under_64_kib_gets_too_big,
	                                    setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(
	        queue_past_its_byte_cap_answers_busy_to_medium_but_never_to_critical, setup_bare,
	        teardown),
	    cmocka_unit_test_setup_teardown(full_queue_answers_busy_to_medium_but_never_to_critical,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(tcp_flood_gets_exactly_one_reply_per_request,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(requests_of_one_priority_commit_in_arrival_order,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(
	        critical_request_is_committed_before_earlier_medium_ones, setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(stop_commits_and_acks_what_was_received, setup_bare,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(read_op_returns_records_from_a_seq_with_max_and_region,
	                                    setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(read_op_caps_one_reply_at_4096_records, setup_inproc,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(head_op_returns_the_head_seq_and_hash, setup_tcp,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(stats_op_reports_exact_counters, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(medium_request_larger_than_the_queue_is_taken_when_idle,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(full_map_answers_full_and_the_log_stays_readable,
	                                    setup_bare, teardown),
	    cmocka_unit_test_setup_teardown(inproc_endpoint_serves_appends_and_reads, setup_inproc,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        server_start_refuses_a_taken_endpoint_and_a_readonly_log, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(client_times_out_without_a_server, setup_bare,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(client_drops_late_and_stray_replies, setup_bare,
	                                    teardown),
	};

	if (getenv("TEST_FILTER")) /* run some cases only: TEST_FILTER='*read*' */
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
