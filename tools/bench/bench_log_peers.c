/* bench_log_peers.c - the peers of `mmo bench log`, fed the same events as
 * the log: raw MDB_APPEND of the stored records in durable write
 * transactions of the log's average batch (the physical limit), and a
 * redis-server (appendonly yes, appendfsync always) with P hiredis
 * connections pipelining XADD (the peer). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, ppoll */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <linux/magic.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_log_int.h"
#include "bench_util.h"
#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"

/* ------------------------------------------------------------ raw LMDB */

static int raw_fail(MDB_env *env, MDB_txn *txn, int rc, const char *what, char *why, size_t wl)
{
	snprintf(why, wl, "raw LMDB: %s: %s", what, mdb_strerror(rc));
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return -1;
}

int bench_log_raw_phase(const struct bench_log_config *cfg, const struct bench_evtpl *tpl,
                        const char *dir, uint64_t batch, unsigned run_no,
                        struct bench_raw_result *res, char *why, size_t wl)
{
	size_t rec_len = EVLOG_HDR_LEN + tpl->len;
	uint8_t rec[EVLOG_HDR_LEN + TPL_CAP], key[8];
	size_t map = (size_t)cfg->events * (rec_len + 64) * 2 + ((size_t)64 << 20);
	MDB_val k = {sizeof(key), key}, v = {rec_len, rec};
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	struct bench_progress pg;
	uint64_t seq = 0, io0;
	int64_t t0;
	int rc;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		snprintf(why, wl, "cannot create %.300s: %s", dir, strerror(errno));
		return -1;
	}
	memset(rec, 0xa5, EVLOG_HDR_LEN);
	memcpy(rec + EVLOG_HDR_LEN, tpl->buf, tpl->len);
	if ((rc = mdb_env_create(&env))) {
		snprintf(why, wl, "raw LMDB: %s", mdb_strerror(rc));
		return -1;
	}
	mdb_env_set_maxdbs(env, 2);
	mdb_env_set_mapsize(env, map);
	if ((rc = mdb_env_open(env, dir, cfg->nosync ? MDB_NOSYNC : 0, 0640)))
		return raw_fail(env, NULL, rc, "open", why, wl);
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
		return raw_fail(env, NULL, rc, "begin", why, wl);
	if ((rc = mdb_dbi_open(txn, "events", MDB_CREATE, &dbi)))
		return raw_fail(env, txn, rc, "create table", why, wl);
	rc = mdb_txn_commit(txn); /* frees txn, even on failure */
	txn = NULL;
	if (rc)
		return raw_fail(env, NULL, rc, "commit", why, wl);
	res->batch = batch ? batch : 1;
	res->txns = 0;
	io0 = bench_io_write_bytes(getpid());
	t0 = mmo_mono_us();
	pg = (struct bench_progress){t0, t0, 0};
	while (seq < cfg->events) {
		if (bench_log_interrupted) {
			snprintf(why, wl, "bench_log_interrupted");
			mdb_env_close(env);
			return -1;
		}
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
			return raw_fail(env, NULL, rc, "begin", why, wl);
		for (uint64_t i = 0; i < res->batch && seq < cfg->events; i++) {
			seq++;
			for (int b = 7; b >= 0; b--)
				key[7 - b] = (uint8_t)(seq >> (8 * b));
			if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)))
				return raw_fail(env, txn, rc, "put", why, wl);
		}
		rc = mdb_txn_commit(txn);
		txn = NULL;
		if (rc)
			return raw_fail(env, NULL, rc, "commit", why, wl);
		res->txns++;
		bench_progress_tick(&pg, "raw LMDB", run_no, seq, cfg->events);
	}
	res->secs = (double)(mmo_mono_us() - t0) / 1e6;
	res->per_s = (double)cfg->events / res->secs;
	res->disk_per_event = (double)(bench_io_write_bytes(getpid()) - io0) / (double)cfg->events;
	mdb_env_close(env);
	return 0;
}

/* ------------------------------------------------------------ redis */

struct redis_run {
	const struct bench_log_config *cfg;
	const struct bench_evtpl *tpl;
	unsigned port;
	pthread_barrier_t go;
	int64_t t0;
};

struct rproducer {
	struct redis_run *run;
	pthread_t th;
	unsigned id;
	uint64_t base, quota;
	struct bench_hist h;
	int64_t t_done;
	atomic_uint_fast64_t acked;
	atomic_bool finished;
	bool failed;
	char why[192];
};

static void rfail(struct rproducer *p, redisContext *c, const char *what)
{
	snprintf(p->why, sizeof(p->why), "%s: %s", what, c && c->err ? c->errstr : "error");
	p->failed = true;
}

static void *redis_producer(void *arg)
{
	struct rproducer *p = arg;
	const struct bench_log_config *cfg = p->run->cfg;
	const struct bench_evtpl *t = p->run->tpl;
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", (int)p->run->port, tv);
	uint64_t W = (uint64_t)cfg->window * cfg->per_req; /* the log's events in flight */
	int64_t *sent_at = calloc(W, sizeof(*sent_at));
	uint8_t val[TPL_CAP];
	const char *argv[5] = {"XADD", REDIS_KEY, "*", "f", (const char *)val};
	size_t lens[5] = {4, sizeof(REDIS_KEY) - 1, 1, 1, t->len};
	uint64_t sent = 0, acked = 0;
	double interval = cfg->rate ? (double)cfg->producers * 1e6 / (double)cfg->rate : 0;
	int64_t t0;

	if (!c || c->err || !sent_at)
		rfail(p, c, "cannot connect to redis");
	pthread_barrier_wait(&p->run->go);
	if (p->failed)
		goto out;
	t0 = p->run->t0 + (int64_t)(interval * p->id / cfg->producers);

	while (acked < p->quota && !bench_log_interrupted) {
		int64_t now = mmo_mono_us(), due = now, wait;
		struct timespec ts;
		struct pollfd pfd = {c->fd, POLLIN, 0};
		bool appended = false;
		void *rep;
		int wdone, r;

		while (sent < p->quota && sent - acked < W) {
			if (cfg->rate) {
				due = t0 + (int64_t)(interval * (double)sent);
				if (now < due)
					break;
			}
			bench_tpl_stamp(t, val, p->id, p->base + sent, cfg->players);
			if (redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK) {
				rfail(p, c, "XADD");
				goto out;
			}
			sent_at[sent % W] = mmo_mono_us();
			sent++;
			appended = true;
		}
		if (appended) {
			do {
				if (redisBufferWrite(c, &wdone) != REDIS_OK) {
					rfail(p, c, "write");
					goto out;
				}
			} while (!wdone);
		}
		for (;;) {
			redisReply *rr;

			if (redisGetReplyFromReader(c, &rep) != REDIS_OK) {
				rfail(p, c, "read");
				goto out;
			}
			if (!rep)
				break;
			rr = rep;
			if (rr->type != REDIS_REPLY_STRING) {
				snprintf(p->why, sizeof(p->why), "XADD: %s",
				         rr->type == REDIS_REPLY_ERROR ? rr->str
				                                       : "unexpected reply");
				freeReplyObject(rr);
				p->failed = true;
				goto out;
			}
			freeReplyObject(rr);
			p->t_done = mmo_mono_us();
			bench_hist_add(&p->h, p->t_done - sent_at[acked % W]);
			acked++;
		}
		atomic_store(&p->acked, acked);
		if (acked >= p->quota)
			break;
		if (sent < p->quota && sent - acked < W) {
			/* Room in the window: only the pacing holds the next send. */
			wait = cfg->rate ? due - mmo_mono_us() : 0;
			if (wait <= 0)
				continue;
		} else {
			wait = -1;
		}
		if (wait > 0) {
			ts.tv_sec = wait / 1000000;
			ts.tv_nsec = (long)(wait % 1000000) * 1000;
		} else {
			ts.tv_sec = CLIENT_TIMEOUT_MS / 1000;
			ts.tv_nsec = 0;
		}
		r = ppoll(&pfd, 1, &ts, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			if (wait < 0) {
				snprintf(p->why, sizeof(p->why), "no reply within %d ms",
				         CLIENT_TIMEOUT_MS);
				p->failed = true;
				goto out;
			}
			continue;
		}
		if (redisBufferRead(c) != REDIS_OK) {
			rfail(p, c, "read");
			goto out;
		}
	}
	if (acked < p->quota && !p->failed) {
		snprintf(p->why, sizeof(p->why), "bench_log_interrupted");
		p->failed = true;
	}
out:
	if (c)
		redisFree(c);
	free(sent_at);
	atomic_store(&p->finished, true);
	return NULL;
}

/* Start redis-server in dir on a free port; wait until it answers PING. */
static int redis_start(const struct bench_log_config *cfg, const char *dir, unsigned *port,
                       char *why, size_t wl)
{
	return bench_redis_start(cfg->redis_path, dir, cfg->nosync ? "no" : "always",
	                         &bench_log_redis_pid, &bench_log_interrupted, port, why, wl);
}

int bench_log_redis_phase(const struct bench_log_config *cfg, const struct bench_evtpl *tpl,
                          const char *dir, unsigned run_no, struct bench_redis_result *res,
                          char *why, size_t wl)
{
	struct redis_run run = {.cfg = cfg, .tpl = tpl};
	struct rproducer *prods = calloc(cfg->producers, sizeof(*prods));
	struct bench_hist *all = calloc(1, sizeof(*all));
	struct bench_progress pg;
	bool barrier = false;
	int64_t cpu0, t_end = 0;
	uint64_t io0;
	int rc = -1;

	if (!prods || !all) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	if (redis_start(cfg, dir, &run.port, why, wl))
		goto out_stop;
	if (pthread_barrier_init(&run.go, NULL, cfg->producers + 1)) {
		snprintf(why, wl, "cannot create a barrier");
		goto out_stop;
	}
	barrier = true;
	for (unsigned i = 0; i < cfg->producers; i++) {
		struct rproducer *p = &prods[i];
		uint64_t share = cfg->events / cfg->producers, rest = cfg->events % cfg->producers;

		p->run = &run;
		p->id = i;
		p->base = share * i + (i < rest ? i : rest);
		p->quota = share + (i < rest ? 1 : 0);
		if (pthread_create(&p->th, NULL, redis_producer, p)) {
			fprintf(stderr, "mmo %s: cannot start producer thread\n", BENCH_LOG_CMD);
			bench_redis_stop(&bench_log_redis_pid);
			exit(EXIT_FAIL);
		}
	}
	cpu0 = bench_pid_cpu_us(bench_log_redis_pid);
	io0 = bench_io_write_bytes(bench_log_redis_pid);
	run.t0 = mmo_mono_us();
	pg = (struct bench_progress){run.t0, run.t0, 0};
	pthread_barrier_wait(&run.go);
	for (;;) {
		uint64_t done = 0;
		unsigned fin = 0;

		for (unsigned i = 0; i < cfg->producers; i++) {
			done += atomic_load(&prods[i].acked);
			fin += atomic_load(&prods[i].finished);
		}
		if (fin == cfg->producers)
			break;
		bench_progress_tick(&pg, "redis XADD", run_no, done, cfg->events);
		bench_sleep_us(20000);
	}
	for (unsigned i = 0; i < cfg->producers; i++)
		pthread_join(prods[i].th, NULL);
	for (unsigned i = 0; i < cfg->producers; i++) {
		if (prods[i].failed) {
			snprintf(why, wl, "redis producer %u: %s", i, prods[i].why);
			goto out_stop;
		}
		bench_hist_merge(all, &prods[i].h);
		if (prods[i].t_done > t_end)
			t_end = prods[i].t_done;
	}
	res->secs = (double)(t_end - run.t0) / 1e6;
	res->per_s = (double)cfg->events / res->secs;
	res->server_cpu_pct = 100.0 * (double)(bench_pid_cpu_us(bench_log_redis_pid) - cpu0) /
	                      (double)(t_end - run.t0);
	res->disk_per_event =
	    (double)(bench_io_write_bytes(bench_log_redis_pid) - io0) / (double)cfg->events;
	res->p50 = bench_hist_quantile(all, 0.50);
	res->p99 = bench_hist_quantile(all, 0.99);
	{
		struct timeval tv = {2, 0};
		redisContext *c = redisConnectWithTimeout("127.0.0.1", (int)run.port, tv);
		redisReply *r = c && !c->err ? redisCommand(c, "XLEN " REDIS_KEY) : NULL;
		bool ok =
		    r && r->type == REDIS_REPLY_INTEGER && (uint64_t)r->integer == cfg->events;

		if (!ok)
			snprintf(why, wl, "redis holds %lld entries, not %llu",
			         r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL,
			         (unsigned long long)cfg->events);
		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		if (!ok)
			goto out_stop;
	}
	rc = 0;
out_stop:
	bench_redis_stop(&bench_log_redis_pid);
out:
	if (barrier)
		pthread_barrier_destroy(&run.go);
	free(prods);
	free(all);
	return rc;
}
