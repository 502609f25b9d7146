/* intake.c - the log's writer thread: ZeroMQ ingest and group commit.
 *
 * One thread owns the ROUTER (ingest) and PUB (bus) sockets and the write
 * side of the journal. Each pass of its loop:
 *   1. waits for requests (blocking only when nothing is pending),
 *   2. drains what is queued on the socket, answering reads at once and
 *      queueing appends (bounded: one request to req_bytes_max bytes, else
 *      too_big; low/medium get `busy` past queue_max events or
 *      queue_bytes_max bytes, and past twice either the socket is left
 *      alone so senders block),
 *   3. takes a batch (critical first, whole requests, up to batch_max
 *      events), writes it in one transaction and commits it durably,
 *   4. only then acks every request of the batch and publishes its events
 *      (bus.c).
 * The indexer thread (index.c) follows the commits. Framing is in
 * docs/protocol.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "evlog_int.h"
#include "schemas/mmo_util.h"
#include "wire.h"

#define DRAIN_MAX      4096      /* messages read per pass */
#define READ_BYTES_MAX (4 << 20) /* bytes of records in one read reply */
#define POLL_IDLE_MS   100       /* wake-up to notice a stop request */

struct request {
	zmq_msg_t route; /* routing id */
	bool delim;      /* REQ-style empty delimiter present */
	uint32_t req_id;
	unsigned priority;
	size_t n;          /* events */
	size_t bytes;      /* of its event frames */
	zmq_msg_t *frames; /* n event frames */
	size_t frames_cap;
	size_t first; /* index of its first result in the batch */
};

struct evlog_server {
	evlog *log;
	void *router;
	pthread_t thread;
	atomic_bool stop;
	size_t queue_max, batch_max;
	size_t req_bytes_max, queue_bytes_max;

	/* Pending requests in arrival order, and a free list to reuse them. */
	struct request **pending;
	size_t npending, pending_events, pending_bytes, pending_cap;
	struct request **freelist;
	size_t nfree;

	/* Batch scratch: inputs and outputs of one commit. */
	struct evlog_in *in;
	struct evlog_out *out;
	struct request **batch;
	uint8_t *reply_buf;

	struct evlog_bus bus; /* the PUB side (bus.c) */

	pthread_mutex_t mu; /* guards stats */
	struct evlog_stats stats;

	struct evlog_indexer ix; /* follows commits (index.c) */
};

/* ------------------------------------------------------------ helpers */

static struct request *req_get(evlog_server *s)
{
	struct request *r;

	if (s->nfree)
		return s->freelist[--s->nfree];
	r = calloc(1, sizeof(*r));
	return r;
}

static void req_release(evlog_server *s, struct request *r)
{
	zmq_msg_close(&r->route);
	for (size_t i = 0; i < r->n; i++)
		zmq_msg_close(&r->frames[i]);
	r->n = 0;
	if (s->nfree < s->pending_cap) {
		s->freelist[s->nfree++] = r;
	} else {
		free(r->frames);
		free(r);
	}
}

static int frames_reserve(struct request *r, size_t n)
{
	zmq_msg_t *f;

	if (n <= r->frames_cap)
		return MMO_OK;
	f = realloc(r->frames, n * sizeof(*f));
	if (!f)
		return MMO_ENOMEM;
	r->frames = f;
	r->frames_cap = n;
	return MMO_OK;
}

/* Send the envelope (routing id, delimiter) then the reply frames. */
static void send_reply(evlog_server *s, zmq_msg_t *route, bool delim, const uint8_t *hdr,
                       const void *const *parts, const size_t *lens, size_t nparts)
{
	zmq_msg_t copy;

	zmq_msg_init(&copy);
	zmq_msg_copy(&copy, route);
	if (zmq_msg_send(&copy, s->router, ZMQ_SNDMORE) < 0) {
		zmq_msg_close(&copy);
		return;
	}
	if (delim)
		zmq_send(s->router, "", 0, ZMQ_SNDMORE);
	zmq_send(s->router, hdr, WIRE_HDR_LEN, nparts ? ZMQ_SNDMORE : 0);
	for (size_t i = 0; i < nparts; i++)
		zmq_send(s->router, parts[i], lens[i], i + 1 < nparts ? ZMQ_SNDMORE : 0);
}

static void reply_status(evlog_server *s, zmq_msg_t *route, bool delim, unsigned op,
                         uint32_t req_id, int status)
{
	uint8_t hdr[WIRE_HDR_LEN];

	wire_hdr_put(hdr, op, req_id, (uint32_t)status, 0);
	send_reply(s, route, delim, hdr, NULL, NULL, 0);
}

static void drain_rest(void *sock)
{
	int more = 0;
	size_t sz = sizeof(more);
	zmq_msg_t m;

	zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
	while (more) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			zmq_msg_close(&m);
			return;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
}

/* ------------------------------------------------------------ reads */

static void serve_head(evlog_server *s, zmq_msg_t *route, bool delim, uint32_t req_id)
{
	uint8_t hdr[WIRE_HDR_LEN], body[8 + EVLOG_HASH_LEN];
	uint64_t head;
	int err = evlog_head(s->log, &head, body + 8);
	const void *parts[1] = {body};
	size_t lens[1] = {sizeof(body)};

	if (err) {
		reply_status(s, route, delim, WIRE_OP_HEAD, req_id, err);
		return;
	}
	mmo_be64_put(body, head);
	wire_hdr_put(hdr, WIRE_OP_HEAD, req_id, MMO_OK, 0);
	send_reply(s, route, delim, hdr, parts, lens, 1);
}

static void serve_stats(evlog_server *s, zmq_msg_t *route, bool delim, uint32_t req_id)
{
	uint8_t hdr[WIRE_HDR_LEN];
	struct evlog_stats st;
	char text[8192];
	const void *parts[1] = {text};
	size_t lens[1];

	evlog_server_stats(s, &st);
	lens[0] = evlog_stats_format(&st, text, sizeof(text));
	wire_hdr_put(hdr, WIRE_OP_STATS, req_id, MMO_OK, 0);
	send_reply(s, route, delim, hdr, parts, lens, 1);
}

/* READ: frame 1 = from seq (8 bytes), optional frame 2 = region id.
 * Reply: header, head (8 bytes), one frame per record (seq ‖ stored value),
 * then an empty frame that ends the reply. */
static void serve_read(evlog_server *s, zmq_msg_t *route, bool delim, uint32_t req_id, uint32_t max,
                       zmq_msg_t *args, size_t nargs)
{
	uint8_t hdr[WIRE_HDR_LEN], head_be[8];
	char region[MMO_ID_MAX + 1];
	struct evlog_rec rec;
	evlog_iter *it = NULL;
	uint64_t from, head;
	size_t bytes = 0, count = 0;
	zmq_msg_t copy, frame;
	int err;

	if (nargs < 1 || nargs > 2 || zmq_msg_size(&args[0]) != 8) {
		reply_status(s, route, delim, WIRE_OP_READ, req_id, MMO_EPROTO);
		return;
	}
	from = mmo_be64_get(zmq_msg_data(&args[0]));
	if (max == 0 || max > EVLOG_READ_MAX)
		max = EVLOG_READ_MAX;
	if (nargs == 2) {
		size_t rl = zmq_msg_size(&args[1]);

		if (rl == 0 || rl > MMO_ID_MAX) {
			reply_status(s, route, delim, WIRE_OP_READ, req_id, MMO_EBADID);
			return;
		}
		memcpy(region, zmq_msg_data(&args[1]), rl);
		region[rl] = 0;
		if (!mmo_id_valid(region)) {
			reply_status(s, route, delim, WIRE_OP_READ, req_id, MMO_EBADID);
			return;
		}
	}
	err = evlog_head(s->log, &head, NULL);
	if (!err)
		err = evlog_iter_open(s->log, nargs == 2 ? EVLOG_BY_REGION : EVLOG_ALL,
		                      nargs == 2 ? region : NULL, from, &it);
	if (err) {
		reply_status(s, route, delim, WIRE_OP_READ, req_id, err);
		return;
	}
	zmq_msg_init(&copy);
	zmq_msg_copy(&copy, route);
	zmq_msg_send(&copy, s->router, ZMQ_SNDMORE);
	if (delim)
		zmq_send(s->router, "", 0, ZMQ_SNDMORE);
	wire_hdr_put(hdr, WIRE_OP_READ, req_id, MMO_OK, 0);
	zmq_send(s->router, hdr, WIRE_HDR_LEN, ZMQ_SNDMORE);
	mmo_be64_put(head_be, head);
	zmq_send(s->router, head_be, sizeof(head_be), ZMQ_SNDMORE);
	while (count < max && bytes < READ_BYTES_MAX && evlog_iter_next(it, &rec) == MMO_OK &&
	       rec.seq <= head) {
		if (zmq_msg_init_size(&frame, 8 + rec.raw_len))
			break;
		mmo_be64_put(zmq_msg_data(&frame), rec.seq);
		memcpy((uint8_t *)zmq_msg_data(&frame) + 8, rec.raw, rec.raw_len);
		if (zmq_msg_send(&frame, s->router, ZMQ_SNDMORE) < 0) {
			zmq_msg_close(&frame);
			break;
		}
		count++;
		bytes += rec.raw_len;
	}
	evlog_iter_close(it);
	zmq_send(s->router, "", 0, 0);
	pthread_mutex_lock(&s->mu);
	s->stats.reads++;
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------ intake */

/* Receive one whole request from the ROUTER. Returns 1 if one was taken,
 * 0 if none was waiting, -1 on a socket error. */
static int take_one(evlog_server *s)
{
	struct request *r = NULL;
	zmq_msg_t route, m, args[2];
	unsigned op, prio;
	uint32_t req_id = 0, count;
	bool delim = false;
	size_t nargs = 0;
	int err;

	zmq_msg_init(&route);
	if (zmq_msg_recv(&route, s->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&route);
		return errno == EAGAIN ? 0 : -1;
	}
	if (!zmq_msg_more(&route)) {
		zmq_msg_close(&route);
		return 1; /* a routing id alone: nothing to answer */
	}
	zmq_msg_init(&m);
	zmq_msg_recv(&m, s->router, 0);
	if (zmq_msg_size(&m) == 0 && zmq_msg_more(&m)) {
		delim = true; /* REQ-style envelope */
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		zmq_msg_recv(&m, s->router, 0);
	}
	err = wire_hdr_get(zmq_msg_data(&m), zmq_msg_size(&m), &op, &req_id, &count, &prio);
	bool more = zmq_msg_more(&m);
	zmq_msg_close(&m);
	if (err) {
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, err);
		goto out_route;
	}
	if (op == WIRE_OP_HEAD || op == WIRE_OP_STATS) {
		if (more)
			drain_rest(s->router);
		if (op == WIRE_OP_HEAD)
			serve_head(s, &route, delim, req_id);
		else
			serve_stats(s, &route, delim, req_id);
		goto out_route;
	}
	if (op == WIRE_OP_READ) {
		while (more && nargs < 2) {
			zmq_msg_init(&args[nargs]);
			zmq_msg_recv(&args[nargs], s->router, 0);
			more = zmq_msg_more(&args[nargs]);
			nargs++;
		}
		if (more) {
			drain_rest(s->router);
			reply_status(s, &route, delim, op, req_id, MMO_EPROTO);
		} else {
			serve_read(s, &route, delim, req_id, count, args, nargs);
		}
		for (size_t i = 0; i < nargs; i++)
			zmq_msg_close(&args[i]);
		goto out_route;
	}

	/* APPEND: exactly `count` event frames must follow. */
	if (count == 0 || count > EVLOG_REQ_MAX) {
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, count ? MMO_ETOOBIG : MMO_EPROTO);
		goto out_route;
	}
	/* An empty queue takes any request, so a medium one larger than
	 * queue_max is not refused forever. */
	if (prio >= MMO_PRIO_MEDIUM && s->pending_events &&
	    s->pending_events + count > s->queue_max) {
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, MMO_EBUSY);
		pthread_mutex_lock(&s->mu);
		s->stats.busy++;
		pthread_mutex_unlock(&s->mu);
		goto out_route;
	}
	r = req_get(s);
	if (!r || frames_reserve(r, count)) {
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, MMO_ENOMEM);
		if (r)
			req_release(s, r);
		goto out_route;
	}
	/* ZeroMQ bounds each frame (1 MiB), not the message: count the bytes
	 * of the whole request and stop at the cap. */
	r->n = 0;
	r->bytes = 0;
	while (more && r->n < count && r->bytes <= s->req_bytes_max) {
		zmq_msg_init(&r->frames[r->n]);
		zmq_msg_recv(&r->frames[r->n], s->router, 0);
		more = zmq_msg_more(&r->frames[r->n]);
		r->bytes += zmq_msg_size(&r->frames[r->n]);
		r->n++;
	}
	if (r->bytes > s->req_bytes_max) {
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, MMO_ETOOBIG);
		zmq_msg_init(&r->route);
		req_release(s, r);
		goto out_route;
	}
	if (more || r->n != count) {
		/* Frame count does not match the header: refuse the whole request. */
		if (more)
			drain_rest(s->router);
		reply_status(s, &route, delim, op, req_id, MMO_EPROTO);
		zmq_msg_init(&r->route);
		req_release(s, r);
		goto out_route;
	}
	/* The same rule in bytes as in events above (the size is known only
	 * now: ZeroMQ delivers a message whole, so it was held already). */
	if (prio >= MMO_PRIO_MEDIUM && s->npending &&
	    s->pending_bytes + r->bytes > s->queue_bytes_max) {
		reply_status(s, &route, delim, op, req_id, MMO_EBUSY);
		zmq_msg_init(&r->route);
		req_release(s, r);
		pthread_mutex_lock(&s->mu);
		s->stats.busy++;
		pthread_mutex_unlock(&s->mu);
		goto out_route;
	}
	zmq_msg_init(&r->route);
	zmq_msg_move(&r->route, &route);
	r->delim = delim;
	r->req_id = req_id;
	r->priority = prio;
	s->pending[s->npending++] = r;
	s->pending_events += count;
	s->pending_bytes += r->bytes;
	return 1;

out_route:
	zmq_msg_close(&route);
	return 1;
}

/* ------------------------------------------------------------ commit */

static unsigned hist_bucket(uint64_t v, unsigned shift)
{
	unsigned b = 0;

	while (b < 11 && v > ((uint64_t)1 << (b + shift)))
		b++;
	return b;
}

/* Take whole requests, critical first, up to batch_max events. */
static size_t pick_batch(evlog_server *s, size_t *nreq)
{
	size_t events = 0, bytes = 0, nb = 0, kept = 0;
	bool full = false;

	/* Stop at the first request that does not fit: taking a later, smaller
	 * one instead would commit it ahead of an earlier request of the same
	 * (or a more urgent) priority. */
	for (unsigned prio = MMO_PRIO_CRITICAL; prio <= MMO_PRIO_LOW && !full; prio++) {
		for (size_t i = 0; i < s->npending; i++) {
			struct request *r = s->pending[i];

			if (!r || r->priority != prio)
				continue;
			if (events && events + r->n > s->batch_max) {
				full = true;
				break;
			}
			r->first = events;
			for (size_t j = 0; j < r->n; j++) {
				s->in[events + j].buf = zmq_msg_data(&r->frames[j]);
				s->in[events + j].len = zmq_msg_size(&r->frames[j]);
				s->in[events + j].priority = prio;
			}
			events += r->n;
			bytes += r->bytes;
			s->batch[nb++] = r;
			s->pending[i] = NULL;
		}
	}
	for (size_t i = 0; i < s->npending; i++) {
		if (s->pending[i])
			s->pending[kept++] = s->pending[i];
	}
	s->npending = kept;
	s->pending_events -= events;
	s->pending_bytes -= bytes;
	*nreq = nb;
	return events;
}

static void commit_batch(evlog_server *s)
{
	size_t nreq, n = pick_batch(s, &nreq);
	uint64_t appended = 0, dups = 0, rejected = 0;
	int64_t t0, dt;
	int err;

	if (!n)
		return;
	t0 = mmo_mono_us();
	err = evlog_append(s->log, s->in, n, mmo_now_us(), s->out);
	dt = mmo_mono_us() - t0;
	if (err == MMO_EFULL)
		mmo_logf(MMO_LOG_ERROR, "log",
		         "storage map full: refusing %zu events (raise --map-size)", n);
	else if (err)
		mmo_logf(MMO_LOG_ERROR, "log", "commit of %zu events failed: %s", n,
		         mmo_strerror(err));

	/* Durable now: ack every request of the batch, then publish. */
	for (size_t i = 0; i < nreq; i++) {
		struct request *r = s->batch[i];
		uint8_t hdr[WIRE_HDR_LEN];
		uint8_t *res = s->reply_buf;
		const void *parts[1] = {res};
		size_t lens[1] = {r->n * WIRE_RESULT_LEN};

		if (err) {
			reply_status(s, &r->route, r->delim, WIRE_OP_APPEND, r->req_id, err);
			continue;
		}
		for (size_t j = 0; j < r->n; j++) {
			const struct evlog_out *o = &s->out[r->first + j];

			mmo_be64_put(res + j * WIRE_RESULT_LEN, o->seq);
			mmo_be32_put(res + j * WIRE_RESULT_LEN + 8, (uint32_t)o->err);
		}
		wire_hdr_put(hdr, WIRE_OP_APPEND, r->req_id, MMO_OK, 0); /* reply: byte 12 is 0 */
		send_reply(s, &r->route, r->delim, hdr, parts, lens, 1);
	}
	if (!err) {
		for (size_t i = 0; i < n; i++) {
			if (s->out[i].err)
				rejected++;
			else if (s->out[i].dup)
				dups++;
			else {
				appended++;
				evlog_bus_publish(&s->bus, &s->in[i], &s->out[i]);
			}
		}
	}
	for (size_t i = 0; i < nreq; i++)
		req_release(s, s->batch[i]);

	if (appended)
		evlog_indexer_notify(&s->ix, s->log->head_seq);
	pthread_mutex_lock(&s->mu);
	s->stats.head_seq = s->log->head_seq;
	s->stats.appended += appended;
	s->stats.duplicates += dups;
	s->stats.rejected += rejected;
	s->stats.batches++;
	if (n > s->stats.batch_events_max)
		s->stats.batch_events_max = n;
	s->stats.commit_us_sum += (uint64_t)dt;
	if ((uint64_t)dt > s->stats.commit_us_max)
		s->stats.commit_us_max = (uint64_t)dt;
	s->stats.commit_hist[hist_bucket((uint64_t)dt, 4)]++;
	s->stats.batch_hist[hist_bucket(n, 0)]++;
	if (err == MMO_EFULL)
		s->stats.full_errors++;
	s->stats.queue_depth = s->pending_events;
	s->stats.bus_regions = s->bus.nregions;
	s->stats.bus_regions_evicted = s->bus.evicted;
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------ the loop */

static void *writer_main(void *arg)
{
	evlog_server *s = arg;
	zmq_pollitem_t pi = {s->router, 0, ZMQ_POLLIN, 0};
	size_t hard_cap = s->queue_max * 2, hard_bytes = s->queue_bytes_max * 2;
	bool drained_after_stop = false;

	mmo_thread_name("log-writer");
	mmo_logf(MMO_LOG_DEBUG, "log", "writer thread started");
	for (;;) {
		bool stopping = atomic_load(&s->stop);

		if (stopping && drained_after_stop && !s->npending)
			break;
		if (!s->npending && !stopping) {
			if (zmq_poll(&pi, 1, POLL_IDLE_MS) < 0 && errno == ETERM)
				break;
		}
		/* Drain, bounded per pass; past the hard cap, leave the rest in the
		 * socket so that senders block (critical and high wait). After a
		 * stop request, take what has arrived once, then only commit. */
		if (!drained_after_stop) {
			for (int i = 0;
			     i < DRAIN_MAX && s->pending_events < hard_cap &&
			     s->pending_bytes < hard_bytes && s->npending < s->pending_cap;
			     i++) {
				if (take_one(s) <= 0)
					break;
			}
			drained_after_stop = stopping;
		}
		pthread_mutex_lock(&s->mu);
		s->stats.queue_depth = s->pending_events;
		pthread_mutex_unlock(&s->mu);
		if (s->npending)
			commit_batch(s);
	}
	return NULL;
}

/* ------------------------------------------------------------ public */

static int bind_sock(void *ctx, int type, const char *ep, void **out, char *msg, size_t msglen)
{
	void *sock = zmq_socket(ctx, type);
	int linger = 2000, hwm = 100000, maxmsg = 1 << 20;

	if (!sock) {
		snprintf(msg, msglen, "cannot create socket: %s", zmq_strerror(errno));
		return MMO_EIO;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (type == ZMQ_ROUTER) {
		int64_t mm = maxmsg;
		int mandatory = 0;

		zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &mm, sizeof(mm));
		zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof(mandatory));
	}
	if (zmq_bind(sock, ep) != 0) {
		snprintf(msg, msglen, "cannot bind %s: %s", ep, zmq_strerror(errno));
		zmq_close(sock);
		return MMO_EIO;
	}
	*out = sock;
	return MMO_OK;
}

int evlog_server_start(const struct evlog_server_opts *o, evlog_server **out, char *errmsg,
                       size_t errlen)
{
	char msgbuf[256];
	char *msg = errmsg ? errmsg : msgbuf;
	size_t msglen = errmsg ? errlen : sizeof(msgbuf);
	evlog_server *s;
	int err;

	if (!o || !o->log || !o->zctx || !o->ingest || o->log->readonly) {
		snprintf(msg, msglen, "log server needs a writable log, a context and an endpoint");
		return MMO_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return MMO_ENOMEM;
	s->log = o->log;
	s->queue_max = o->queue_max ? o->queue_max : 8192;
	s->batch_max = o->batch_max ? o->batch_max : 1024;
	s->req_bytes_max = o->req_bytes_max ? o->req_bytes_max : EVLOG_REQ_BYTES_MAX;
	s->queue_bytes_max = o->queue_bytes_max ? o->queue_bytes_max : EVLOG_QUEUE_BYTES_MAX;
	if (s->batch_max < EVLOG_REQ_MAX)
		s->batch_max = EVLOG_REQ_MAX; /* one whole request always fits */
	s->pending_cap = s->queue_max * 2 + 1;
	pthread_mutex_init(&s->mu, NULL);
	s->pending = calloc(s->pending_cap, sizeof(*s->pending));
	s->freelist = calloc(s->pending_cap, sizeof(*s->freelist));
	s->batch = calloc(s->pending_cap, sizeof(*s->batch));
	s->in = calloc(s->batch_max, sizeof(*s->in));
	s->out = calloc(s->batch_max, sizeof(*s->out));
	s->reply_buf = malloc(EVLOG_REQ_MAX * WIRE_RESULT_LEN);
	if (!s->pending || !s->freelist || !s->batch || !s->in || !s->out || !s->reply_buf ||
	    evlog_bus_init(&s->bus, s->log, o->bus_regions_max)) {
		err = MMO_ENOMEM;
		goto out_free;
	}
	s->stats.head_seq = s->log->head_seq;
	err = bind_sock(o->zctx, ZMQ_ROUTER, o->ingest, &s->router, msg, msglen);
	if (err)
		goto out_free;
	if (o->bus) {
		err = bind_sock(o->zctx, ZMQ_PUB, o->bus, &s->bus.pub, msg, msglen);
		if (err)
			goto out_router;
	}
	if (evlog_indexer_start(&s->ix, s->log)) {
		snprintf(msg, msglen, "cannot start the indexer thread");
		err = MMO_ENOMEM;
		goto out_pub;
	}
	if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
		snprintf(msg, msglen, "cannot start the writer thread");
		err = MMO_ENOMEM;
		goto out_indexer;
	}
	*out = s;
	return MMO_OK;

out_indexer:
	evlog_indexer_stop(&s->ix, 0);
out_pub:
	if (s->bus.pub)
		zmq_close(s->bus.pub);
out_router:
	zmq_close(s->router);
out_free:
	evlog_bus_free(&s->bus);
	free(s->pending);
	free(s->freelist);
	free(s->batch);
	free(s->in);
	free(s->out);
	free(s->reply_buf);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return err;
}

void evlog_server_stop(evlog_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	/* Everything is committed: let the indexer catch up, then stop it. */
	evlog_indexer_stop(&s->ix, s->log->head_seq);
	zmq_close(s->router);
	if (s->bus.pub)
		zmq_close(s->bus.pub);
	for (size_t i = 0; i < s->npending; i++)
		req_release(s, s->pending[i]);
	for (size_t i = 0; i < s->nfree; i++) {
		free(s->freelist[i]->frames);
		free(s->freelist[i]);
	}
	evlog_bus_free(&s->bus);
	free(s->pending);
	free(s->freelist);
	free(s->batch);
	free(s->in);
	free(s->out);
	free(s->reply_buf);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void evlog_server_stats(evlog_server *s, struct evlog_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->stats;
	pthread_mutex_unlock(&s->mu);
	st->indexed_seq = evlog_indexer_indexed(&s->ix);
}
