/* client.c - a DEALER client of the log's ingest (docs/protocol.md).
 *
 * One client per thread. Replies are matched to requests by req_id, so a
 * late reply to a request that timed out is recognised and dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evlog_int.h"
#include "schemas/mmo_util.h"
#include "wire.h"

#define RESULTS_MAX EVLOG_REQ_MAX

struct evlog_client {
	void *sock;
	int timeout_ms;
	uint32_t next_id;
};

int evlog_client_open(void *zctx, const char *endpoint, int timeout_ms, evlog_client **out)
{
	evlog_client *c;
	int linger = 0, hwm = 100000;

	if (!zctx || !endpoint || !out)
		return MMO_EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return MMO_ENOMEM;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	c->next_id = 1;
	c->sock = zmq_socket(zctx, ZMQ_DEALER);
	if (!c->sock) {
		free(c);
		return MMO_EIO;
	}
	zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_connect(c->sock, endpoint) != 0) {
		zmq_close(c->sock);
		free(c);
		return MMO_EINVAL;
	}
	*out = c;
	return MMO_OK;
}

void evlog_client_close(evlog_client *c)
{
	if (!c)
		return;
	zmq_close(c->sock);
	free(c);
}

int evlog_client_fd(evlog_client *c, int *fd)
{
	size_t len = sizeof(*fd);

	if (!c || !fd)
		return MMO_EINVAL;
	return zmq_getsockopt(c->sock, ZMQ_FD, fd, &len) == 0 ? MMO_OK : MMO_EIO;
}

static int send_hdr(evlog_client *c, unsigned op, uint32_t req_id, uint32_t word, unsigned prio,
                    bool more)
{
	uint8_t hdr[WIRE_HDR_LEN];

	wire_hdr_put(hdr, op, req_id, word, prio);
	if (zmq_send(c->sock, hdr, sizeof(hdr), more ? ZMQ_SNDMORE : 0) < 0)
		return errno == ETERM ? MMO_ECLOSED : MMO_EIO;
	return MMO_OK;
}

int evlog_client_send(evlog_client *c, uint32_t req_id, const struct evlog_in *in, size_t n)
{
	unsigned prio = MMO_PRIO_LOW;
	int err;

	if (!c || !in || n == 0 || n > EVLOG_REQ_MAX)
		return MMO_EINVAL;
	/* The request's priority is its most urgent event's. */
	for (size_t i = 0; i < n; i++) {
		unsigned p = in[i].priority ? in[i].priority : MMO_PRIO_MEDIUM;

		if (p < prio)
			prio = p;
	}
	err = send_hdr(c, WIRE_OP_APPEND, req_id, (uint32_t)n, prio, true);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		if (zmq_send(c->sock, in[i].buf, in[i].len, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return MMO_EIO;
	}
	return MMO_OK;
}

/* Receive one whole reply into frames (at most cap; the rest is dropped).
 * Returns the number of frames, 0 on timeout, -1 on error. */
static int recv_frames(evlog_client *c, int timeout_ms, zmq_msg_t *frames, int cap)
{
	zmq_pollitem_t pi = {c->sock, 0, ZMQ_POLLIN, 0};
	int n = 0, more = 1;

	if (zmq_poll(&pi, 1, timeout_ms) <= 0)
		return 0;
	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->sock, 0) < 0) {
			zmq_msg_close(&m);
			for (int i = 0; i < n; i++)
				zmq_msg_close(&frames[i]);
			return -1;
		}
		more = zmq_msg_more(&m);
		if (n < cap)
			frames[n++] = m;
		else
			zmq_msg_close(&m);
	}
	return n;
}

static void close_frames(zmq_msg_t *frames, int n)
{
	for (int i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
}

int evlog_client_recv(evlog_client *c, int timeout_ms, uint32_t *req_id, int *status,
                      uint64_t *seqs, int *errs, size_t cap, size_t *n)
{
	zmq_msg_t f[2];
	unsigned op, prio;
	uint32_t word;
	int nf, err;

	nf = recv_frames(c, timeout_ms < 0 ? c->timeout_ms : timeout_ms, f, 2);
	if (nf == 0)
		return MMO_ETIMEOUT;
	if (nf < 0)
		return MMO_EIO;
	err = wire_hdr_get(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), &op, req_id, &word, &prio);
	if (err || op != WIRE_OP_APPEND) {
		close_frames(f, nf);
		return MMO_EPROTO;
	}
	*status = (int)word;
	*n = 0;
	if (word == MMO_OK) {
		size_t len = nf > 1 ? zmq_msg_size(&f[1]) : 0;
		const uint8_t *p = nf > 1 ? zmq_msg_data(&f[1]) : NULL;
		size_t k = len / WIRE_RESULT_LEN;

		if (len % WIRE_RESULT_LEN) {
			close_frames(f, nf);
			return MMO_EPROTO;
		}
		for (size_t i = 0; i < k && i < cap; i++) {
			seqs[i] = mmo_be64_get(p + i * WIRE_RESULT_LEN);
			errs[i] = (int)mmo_be32_get(p + i * WIRE_RESULT_LEN + 8);
		}
		*n = k < cap ? k : cap;
	}
	close_frames(f, nf);
	return MMO_OK;
}

int evlog_client_append(evlog_client *c, const struct evlog_in *in, size_t n, uint64_t *seqs,
                        int *errs)
{
	uint32_t id = c->next_id++, got_id;
	int64_t deadline = mmo_mono_us() + (int64_t)c->timeout_ms * 1000;
	int status, err;
	size_t k;

	err = evlog_client_send(c, id, in, n);
	if (err)
		return err;
	for (;;) {
		int64_t left = (deadline - mmo_mono_us()) / 1000;

		if (left <= 0)
			return MMO_ETIMEOUT;
		err = evlog_client_recv(c, (int)left, &got_id, &status, seqs, errs, n, &k);
		if (err == MMO_EPROTO)
			continue; /* a stray reply of another kind */
		if (err)
			return err;
		if (got_id != id)
			continue; /* a late reply to an earlier request */
		if (status)
			return status;
		return k == n ? MMO_OK : MMO_EPROTO;
	}
}

/* Wait for the reply to req_id of kind op; frames[0] is its header. */
static int await(evlog_client *c, uint32_t id, unsigned op, zmq_msg_t *frames, int cap, int *nf)
{
	int64_t deadline = mmo_mono_us() + (int64_t)c->timeout_ms * 1000;

	for (;;) {
		int64_t left = (deadline - mmo_mono_us()) / 1000;
		unsigned gop, prio;
		uint32_t gid, word;
		int n;

		if (left <= 0)
			return MMO_ETIMEOUT;
		n = recv_frames(c, (int)left, frames, cap);
		if (n == 0)
			return MMO_ETIMEOUT;
		if (n < 0)
			return MMO_EIO;
		if (wire_hdr_get(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), &gop, &gid,
		                 &word, &prio) ||
		    gid != id || gop != op) {
			close_frames(frames, n);
			continue;
		}
		if (word) {
			close_frames(frames, n);
			return (int)word;
		}
		*nf = n;
		return MMO_OK;
	}
}

int evlog_client_head(evlog_client *c, uint64_t *head)
{
	uint32_t id = c->next_id++;
	zmq_msg_t f[2];
	int nf, err;

	err = send_hdr(c, WIRE_OP_HEAD, id, 0, 0, false);
	if (err)
		return err;
	err = await(c, id, WIRE_OP_HEAD, f, 2, &nf);
	if (err)
		return err;
	if (nf < 2 || zmq_msg_size(&f[1]) != 8 + EVLOG_HASH_LEN)
		err = MMO_EPROTO;
	else
		*head = mmo_be64_get(zmq_msg_data(&f[1]));
	close_frames(f, nf);
	return err;
}

int evlog_client_stats(evlog_client *c, char *buf, size_t cap)
{
	uint32_t id = c->next_id++;
	zmq_msg_t f[2];
	int nf, err;

	if (!cap)
		return MMO_EINVAL;
	err = send_hdr(c, WIRE_OP_STATS, id, 0, 0, false);
	if (err)
		return err;
	err = await(c, id, WIRE_OP_STATS, f, 2, &nf);
	if (err)
		return err;
	size_t len = nf > 1 ? zmq_msg_size(&f[1]) : 0;
	if (len >= cap)
		len = cap - 1;
	if (len)
		memcpy(buf, zmq_msg_data(&f[1]), len);
	buf[len] = 0;
	close_frames(f, nf);
	return MMO_OK;
}

int evlog_client_read(evlog_client *c, uint64_t from, size_t max, const char *region,
                      evlog_rec_fn *fn, void *arg, uint64_t *last, uint64_t *head)
{
	uint32_t id = c->next_id++;
	uint8_t fb[8];
	zmq_msg_t *f;
	int nf = 0, err;
	size_t cap = (max && max < EVLOG_READ_MAX ? max : EVLOG_READ_MAX) + 3;

	if (region && !mmo_id_valid(region))
		return MMO_EBADID;
	f = malloc(cap * sizeof(*f));
	if (!f)
		return MMO_ENOMEM;
	err = send_hdr(c, WIRE_OP_READ, id, (uint32_t)max, 0, true);
	if (!err) {
		mmo_be64_put(fb, from);
		if (zmq_send(c->sock, fb, 8, region ? ZMQ_SNDMORE : 0) < 0 ||
		    (region && zmq_send(c->sock, region, strlen(region), 0) < 0))
			err = MMO_EIO;
	}
	if (!err)
		err = await(c, id, WIRE_OP_READ, f, (int)cap, &nf);
	if (err) {
		free(f);
		return err;
	}
	if (nf < 3 || zmq_msg_size(&f[1]) != 8 || zmq_msg_size(&f[nf - 1]) != 0) {
		err = MMO_EPROTO;
		goto out;
	}
	*head = mmo_be64_get(zmq_msg_data(&f[1]));
	*last = from ? from - 1 : 0;
	for (int i = 2; i < nf - 1; i++) {
		const uint8_t *p = zmq_msg_data(&f[i]);
		size_t len = zmq_msg_size(&f[i]);
		struct evlog_rec rec;

		if (len < 8 || evlog_rec_parse(mmo_be64_get(p), p + 8, len - 8, &rec)) {
			err = MMO_ECORRUPT;
			goto out;
		}
		if (fn) {
			int rc = fn(&rec, arg);

			if (rc) {
				err = rc;
				goto out;
			}
		}
		*last = rec.seq;
	}
	err = MMO_OK;
out:
	close_frames(f, nf);
	free(f);
	return err;
}
