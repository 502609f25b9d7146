/* standin_wire.c - mongo-standin: the wire protocol, connections, the poll loop and main() (see
 * mongo_standin.h). */
#include "mongo_standin.h"

/* ---- the wire ------------------------------------------------------------ */

static int32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (int32_t)BSON_UINT32_FROM_LE(v);
}

static void wr32(uint8_t *p, int32_t v)
{
	uint32_t le = BSON_UINT32_TO_LE((uint32_t)v);

	memcpy(p, &le, 4);
}

static uint8_t *out_reserve(struct conn *c, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 65536;

		while (cap < c->outlen + n)
			cap *= 2;
		c->out = bson_realloc(c->out, cap);
		c->outcap = cap;
	}
	c->outlen += n;
	return c->out + c->outlen - n;
}

static void send_reply(struct conn *c, int32_t opcode, int32_t response_to, const bson_t *doc)
{
	size_t head = opcode == OP_MSG ? 16 + 4 + 1 : 16 + 4 + 8 + 4 + 4;
	uint8_t *p = out_reserve(c, head + doc->len);

	wr32(p, (int32_t)(head + doc->len));
	wr32(p + 4, ++S.next_req_id);
	wr32(p + 8, response_to);
	wr32(p + 12, opcode);
	wr32(p + 16, 0); /* flagBits / responseFlags */
	if (opcode == OP_MSG) {
		p[20] = 0; /* section kind 0: the body */
	} else {
		memset(p + 20, 0, 8); /* cursorID */
		wr32(p + 28, 0);      /* startingFrom */
		wr32(p + 32, 1);      /* numberReturned */
	}
	memcpy(p + head, bson_get_data(doc), doc->len);
}

/* One OP_MSG: body, document sequences folded into the body as arrays. */
static bool handle_op_msg(struct conn *c, const uint8_t *m, size_t len, int32_t req_id)
{
	uint32_t flags = (uint32_t)rd32(m + 16);
	size_t off = 20, end = len;
	bson_t body, merged, reply = BSON_INITIALIZER;
	const bson_t *cmd = &body;
	bool have_body = false, ok = true;
	struct {
		const char *id;
		const uint8_t *p;
		size_t len;
	} seq[MAX_SEQS];
	size_t nseq = 0;
	const char *db;

	if (len < 21 || (flags & MSG_REQUIRED_BITS & ~MSG_KNOWN_LOW))
		return false;
	if (flags & MSG_CHECKSUM) {
		if (end < 25)
			return false;
		end -= 4;
	}
	while (off < end) {
		uint8_t kind = m[off++];
		size_t n;

		if (end - off < 4)
			return false;
		n = (size_t)(uint32_t)rd32(m + off);
		if (n < 5 || n > end - off)
			return false;
		if (kind == 0) {
			if (have_body || !bson_init_static(&body, m + off, n) || !doc_ok(&body))
				return false;
			have_body = true;
		} else if (kind == 1) {
			const uint8_t *nul = memchr(m + off + 4, 0, n - 4);
			size_t p;

			if (!nul || nseq == MAX_SEQS)
				return false;
			seq[nseq].id = (const char *)(m + off + 4);
			seq[nseq].p = nul + 1;
			seq[nseq].len = (size_t)(m + off + n - (nul + 1));
			for (p = 0; p < seq[nseq].len;) {
				bson_t d;
				size_t dl;

				if (seq[nseq].len - p < 5)
					return false;
				dl = (size_t)(uint32_t)rd32(seq[nseq].p + p);
				if (dl < 5 || dl > seq[nseq].len - p ||
				    !bson_init_static(&d, seq[nseq].p + p, dl) || !doc_ok(&d))
					return false;
				p += dl;
			}
			nseq++;
		} else
			return false;
		off += n;
	}
	if (!have_body)
		return false;
	if (nseq > 0) {
		bson_copy_to(&body, &merged);
		cmd = &merged;
		for (size_t i = 0; i < nseq && ok; i++) {
			bson_t arr;
			uint32_t k = 0;
			char buf[16];

			if (bson_has_field(&merged, seq[i].id)) {
				ok = false;
				break;
			}
			bson_append_array_begin(&merged, seq[i].id, -1, &arr);
			for (size_t p = 0; p < seq[i].len;) {
				bson_t d;
				size_t dl = (size_t)(uint32_t)rd32(seq[i].p + p);

				bson_init_static(&d, seq[i].p + p, dl);
				bson_append_document(&arr, idx_key(k++, buf, sizeof(buf)), -1, &d);
				p += dl;
			}
			bson_append_array_end(&merged, &arr);
		}
	}
	if (ok) {
		db = field_str(cmd, "$db");
		run_command(c, c->id, db, cmd, &reply);
		if (!(flags & MSG_MORE_TO_COME))
			send_reply(c, OP_MSG, req_id, &reply);
	}
	if (nseq)
		bson_destroy(&merged);
	bson_destroy(&reply);
	return ok;
}

/* One OP_QUERY: only commands on <db>.$cmd, as the handshake sends. */
static bool handle_op_query(struct conn *c, const uint8_t *m, size_t len, int32_t req_id)
{
	const uint8_t *nsend;
	size_t off, nslen, dl;
	char db[128];
	bson_t q, inner, reply = BSON_INITIALIZER;
	const bson_t *cmd = &q;
	bson_iter_t it;

	if (len < 20 + 1 + 8 + 5)
		return false;
	nsend = memchr(m + 20, 0, len - 20);
	if (!nsend)
		return false;
	nslen = (size_t)(nsend - (m + 20));
	off = 20 + nslen + 1 + 8;
	if (off + 5 > len)
		return false;
	dl = (size_t)(uint32_t)rd32(m + off);
	if (dl < 5 || dl > len - off || !bson_init_static(&q, m + off, dl) || !doc_ok(&q))
		return false;
	if (nslen < 5 || nslen - 5 >= sizeof(db) || memcmp(m + 20 + nslen - 5, ".$cmd", 5)) {
		BSON_APPEND_UTF8(&reply, "$err",
		                 "the mongo stand-in answers only commands over "
		                 "OP_QUERY");
		BSON_APPEND_INT32(&reply, "code", 2);
		BSON_APPEND_DOUBLE(&reply, "ok", 0.0);
		send_reply(c, OP_REPLY, req_id, &reply);
		bson_destroy(&reply);
		return true;
	}
	memcpy(db, m + 20, nslen - 5);
	db[nslen - 5] = 0;
	if (bson_iter_init_find(&it, &q, "$query") && iter_doc(&it, &inner))
		cmd = &inner;
	run_command(c, c->id, db, cmd, &reply);
	send_reply(c, OP_REPLY, req_id, &reply);
	bson_destroy(&reply);
	return true;
}

static bool handle_message(struct conn *c, const uint8_t *m, size_t len)
{
	int32_t req_id = rd32(m + 4), opcode = rd32(m + 12);

	if (opcode == OP_MSG)
		return handle_op_msg(c, m, len, req_id);
	if (opcode == OP_QUERY)
		return handle_op_query(c, m, len, req_id);
	return false;
}

static void conn_read(struct conn *c)
{
	size_t budget = READ_PER_PASS;

	while (budget > 0 && !c->eof) {
		ssize_t n;

		if (c->incap - c->inlen < 65536) {
			c->incap = c->incap ? c->incap * 2 : 65536;
			c->in = bson_realloc(c->in, c->incap);
		}
		n = recv(c->fd, c->in + c->inlen, BSON_MIN(c->incap - c->inlen, budget), 0);
		if (n > 0) {
			c->inlen += (size_t)n;
			budget -= (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			break;
		}
	}
}

/* Handles up to MSGS_PER_PASS complete messages. */
static void conn_process(struct conn *c)
{
	size_t off = 0;
	int done = 0;

	c->pending = false;
	while (!c->dead && c->inlen - off >= 4) {
		int32_t len = rd32(c->in + off);

		if (len < 16 || len > MAX_MSG_BYTES) {
			if (S.verbose)
				fprintf(stderr, "mongo-standin: conn %d: bad length %d\n", c->id,
				        len);
			c->dead = true;
			break;
		}
		if (c->inlen - off < (size_t)len)
			break;
		if (done == MSGS_PER_PASS || c->outlen - c->outoff > OUT_HIGH_WATER) {
			c->pending = true;
			break;
		}
		if (!handle_message(c, c->in + off, (size_t)len)) {
			if (S.verbose)
				fprintf(stderr, "mongo-standin: conn %d: malformed message\n",
				        c->id);
			c->dead = true;
			break;
		}
		off += (size_t)len;
		done++;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	if (c->inlen == 0 && c->incap > 4 * 1024 * 1024) {
		bson_free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
	if (c->eof && !c->pending)
		c->dead = true;
}

static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n > 0) {
			c->outoff += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				c->dead = true;
			break;
		}
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->outcap > 4 * 1024 * 1024) {
			bson_free(c->out);
			c->out = NULL;
			c->outcap = 0;
		}
	}
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	bson_free(c->in);
	bson_free(c->out);
	bson_free(c);
}

static int listen_on(const char *bind_addr, int port, int *bound)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	int fd, one = 1;

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) {
		fprintf(stderr, "mongo-standin: --bind wants an IPv4 address, not %s\n", bind_addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		fprintf(stderr, "mongo-standin: listen on %s:%d: %s\n", bind_addr, port,
		        strerror(errno));
		close(fd);
		return -1;
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mongo-standin [--port P] [--bind ADDR] [--journal FILE]\n"
	           "                     [--fail-writes N] [--fail-code C] [--verbose]\n"
	           "\n"
	           "mongo-standin is a TEST DOUBLE for MongoDB, not a database. It speaks enough\n"
	           "of the wire protocol for libmongoc 1.23 and the mmo projector's tests.\n"
	           "\n"
	           "  --port P         listen on P (default 27017; 0 picks a free port)\n"
	           "  --bind ADDR      IPv4 address to listen on (default 127.0.0.1)\n"
	           "  --journal FILE   log every change to FILE and replay it at start, so\n"
	           "                   data survives a restart (even kill -9)\n"
	           "  --fail-writes N  fail the first N write commands (see mmoFailNext)\n"
	           "  --fail-code C    the error code for --fail-writes (default 91)\n"
	           "  --verbose        log each command to stderr\n"
	           "\n"
	           "Prints \"mongo-standin ready port=P\" once listening; exits 0 on SIGTERM.\n"
	           "\n"
	           "Supports: OP_QUERY commands (handshake, monitoring) and OP_MSG with document\n"
	           "sequences, checksum (skipped) and moreToCome (no reply); hello/isMaster\n"
	           "(maxWireVersion 13, standalone, no topologyVersion), ping, buildInfo,\n"
	           "serverStatus, insert, update ($set $setOnInsert $inc $unset $min $max on\n"
	           "top-level fields, replacement, upsert, multi), delete, find (filter, sort,\n"
	           "skip, limit, batchSize, singleBatch, projection), getMore, killCursors,\n"
	           "aggregate ($match $sort $skip $limit $count $project $group, $collStats\n"
	           "count), count, create, drop, dropDatabase, createIndexes, listIndexes,\n"
	           "dropIndexes, listCollections, listDatabases, endSessions, killSessions.\n"
	           "Filters: equality, $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $nor.\n"
	           "Duplicate _id or unique key: write error 11000. Unknown commands: code 59.\n"
	           "Fault injection: {mmoFailNext: n, code, errmsg, writeError: bool, ns},\n"
	           "{mmoReject: <filter>|null, code (default 121), ns}, {mmoReset: 1},\n"
	           "{mmoStats: 1}, on any database.\n"
	           "Not supported: transactions, auth, TLS, compression, collation,\n"
	           "arrayFilters, pipeline updates, dotted update paths, $regex, $elemMatch,\n"
	           "$expr, findAndModify, distinct, change streams, tailable cursors.\n"
	           "Messages over 48,000,000 bytes or malformed close the connection.\n");
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	const char *bind_addr = "127.0.0.1", *journal_path = NULL;
	long port = 27017, fail_writes = 0, fail_code = 91;
	struct conn *conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS + 2];
	size_t nconns = 0;
	int lfd, sfd, bound = 0, rc = 0;
	sigset_t mask;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			S.verbose = true;
			continue;
		} else if (!v) {
			ok = false;
		} else if (!strcmp(a, "--port")) {
			ok = parse_int(v, 0, 65535, &port);
		} else if (!strcmp(a, "--bind")) {
			bind_addr = v;
		} else if (!strcmp(a, "--journal")) {
			journal_path = v;
		} else if (!strcmp(a, "--fail-writes")) {
			ok = parse_int(v, 0, INT32_MAX, &fail_writes);
		} else if (!strcmp(a, "--fail-code")) {
			ok = parse_int(v, 1, INT32_MAX, &fail_code);
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "mongo-standin: bad argument %s\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	S.fail_n = fail_writes;
	S.fail_code = (int)fail_code;
	snprintf(S.fail_errmsg, sizeof(S.fail_errmsg), "injected failure (--fail-writes)");

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		perror("mongo-standin: signalfd");
		return 1;
	}
	if (journal_path && (S.journal_fd = journal_open(journal_path)) < 0) {
		rc = 1;
		goto out;
	}
	lfd = listen_on(bind_addr, (int)port, &bound);
	if (lfd < 0) {
		rc = 1;
		goto out;
	}
	S.next_cursor = ((int64_t)(now_ms() & 0xffffff) << 24) | 1;
	printf("mongo-standin ready port=%d\n", bound);
	fflush(stdout);

	for (;;) {
		bool pending = false;
		int n;

		pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			short ev = 0;

			if (!c->pending && c->outlen - c->outoff <= OUT_HIGH_WATER && !c->eof)
				ev |= POLLIN;
			if (c->outlen > c->outoff)
				ev |= POLLOUT;
			pending |= c->pending;
			pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		n = poll(pfd, nconns + 2, pending ? 0 : 1000);
		if (n < 0 && errno != EINTR) {
			perror("mongo-standin: poll");
			rc = 1;
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
			break;
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			short re = n > 0 ? pfd[i + 2].revents : 0;

			if (re & (POLLIN | POLLHUP | POLLERR))
				conn_read(c);
			if (re || c->pending)
				conn_process(c);
			if (c->outlen > c->outoff)
				conn_flush(c);
		}
		for (size_t i = 0; i < nconns;) {
			if (conns[i]->dead) {
				conn_free(conns[i]);
				conns[i] = conns[--nconns];
			} else
				i++;
		}
		S.nconns = nconns;
		for (int k = 0; n > 0 && (pfd[1].revents & POLLIN) && k < 64; k++) {
			int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
			struct conn *c;

			if (fd < 0)
				break;
			if (nconns == MAX_CONNS) {
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c = bson_malloc0(sizeof(*c));
			c->fd = fd;
			c->id = ++S.next_conn_id;
			conns[nconns++] = c;
		}
		S.nconns = nconns;
	}
	for (size_t i = 0; i < nconns; i++)
		conn_free(conns[i]);
	close(lfd);
out:
	reset_all();
	if (S.journal_fd >= 0)
		close(S.journal_fd);
	close(sfd);
	return rc;
}
