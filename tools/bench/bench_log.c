/* bench_log.c - `mmo bench log`: the log's ingest against its physical limit
 * (raw LMDB appends) and a peer (Redis Streams), in one run.
 *
 * Each run has three phases, on the same machine, with the same number of
 * events of the same encoded size:
 *   log    the log runs in this process (evlog_open + evlog_server_start on
 *          a fresh folder, ingest and bus on TCP loopback); P producer
 *          threads, each with its own evlog_client DEALER on its own ZeroMQ
 *          context, keep W requests of K events in flight (or pace them at
 *          --rate) and time every request from send to ack.
 *   raw    MDB_APPEND of the same stored records, in write transactions of
 *          the average batch size the log reached in that run, durable
 *          commits, one table, no indexes, no hashing.
 *   redis  a redis-server started here (appendonly yes, appendfsync always)
 *          and P hiredis connections pipelining XADD with the same window.
 * Latencies go into fixed log-linear histograms (no per-event memory), so a
 * run of 10 M events shows whether the process itself stays flat.
 */
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

/* ------------------------------------------------------------ signals */

volatile sig_atomic_t bench_log_interrupted;
volatile pid_t bench_log_redis_pid; /* the redis-server we started, 0 if none */

static void on_signal(int sig)
{
	(void)sig;
	if (bench_log_interrupted)
		_exit(130);
	bench_log_interrupted = 1;
	if (bench_log_redis_pid > 0)
		kill(bench_log_redis_pid, SIGKILL);
}

/* ------------------------------------------------------------ log phase */

struct log_run {
	const struct bench_log_config *cfg;
	const struct bench_evtpl *tpl;
	void *zctx; /* the producers' context */
	char ingest[64];
	pthread_barrier_t go;
	int64_t t0; /* written before the barrier */
};

struct slot {
	int64_t t;      /* send time */
	uint64_t first; /* first event number */
	uint32_t n;
	bool used;
};

struct producer {
	struct log_run *run;
	pthread_t th;
	unsigned id;
	uint64_t base, quota; /* events [base, base + quota) */
	struct bench_hist h;
	uint64_t busy, late, rejected;
	int first_reject;
	int64_t t_done;
	atomic_uint_fast64_t acked;
	atomic_bool finished;
	bool failed;
	char why[192];
};

static void *log_producer(void *arg)
{
	struct producer *p = arg;
	const struct bench_log_config *cfg = p->run->cfg;
	const struct bench_evtpl *t = p->run->tpl;
	unsigned W = cfg->window, K = cfg->per_req;
	struct slot *slots = calloc(W, sizeof(*slots));
	unsigned *freel = calloc(W, sizeof(*freel));
	uint64_t *retry = calloc(W, sizeof(*retry)); /* first event of requests to resend */
	uint8_t *scratch = malloc((size_t)K * t->len);
	struct evlog_in *in = calloc(K, sizeof(*in));
	uint64_t *seqs = calloc(K, sizeof(*seqs));
	int *errs = calloc(K, sizeof(*errs));
	evlog_client *c = NULL;
	unsigned nfree = W, rhead = 0, rcount = 0;
	uint64_t next = 0, acked = 0, k = 0, head;
	double interval = 0; /* µs between two new requests of this producer */
	int64_t t0, hold_until = 0;
	int err;

	if (!slots || !freel || !retry || !scratch || !in || !seqs || !errs) {
		snprintf(p->why, sizeof(p->why), "out of memory");
		p->failed = true;
	} else if ((err = evlog_client_open(p->run->zctx, p->run->ingest, CLIENT_TIMEOUT_MS, &c)) ||
	           (err = evlog_client_head(c, &head))) {
		snprintf(p->why, sizeof(p->why), "producer %u cannot reach %s: %s", p->id,
		         p->run->ingest, mmo_strerror(err));
		p->failed = true;
	}
	for (unsigned i = 0; freel && i < W; i++)
		freel[i] = W - 1 - i;
	pthread_barrier_wait(&p->run->go);
	if (p->failed)
		goto out;
	t0 = p->run->t0;
	if (cfg->rate) {
		interval = (double)K * cfg->producers * 1e6 / (double)cfg->rate;
		t0 += (int64_t)(interval * p->id / cfg->producers); /* spread the producers */
	}

	while (acked < p->quota && !bench_log_interrupted) {
		int64_t now = mmo_mono_us(), due = now, wait;
		uint32_t req_id;
		int status;
		size_t n;

		/* Send what the window, the pacing and any busy backoff allow. */
		while (nfree && (rcount || next < p->quota) && now >= hold_until) {
			uint64_t first;
			uint32_t cnt;
			unsigned s;

			if (rcount) {
				first = retry[rhead];
				rhead = (rhead + 1) % W;
				rcount--;
			} else {
				if (cfg->rate) {
					due = t0 + (int64_t)(interval * (double)k);
					if (now < due)
						break;
					if (now - due > 1000)
						p->late++;
				}
				first = next;
				next += K;
				k++;
			}
			cnt = (uint32_t)(p->quota - first < K ? p->quota - first : K);
			for (uint32_t i = 0; i < cnt; i++) {
				uint8_t *d = scratch + (size_t)i * t->len;

				bench_tpl_stamp(t, d, p->id, p->base + first + i, cfg->players);
				in[i].buf = d;
				in[i].len = t->len;
				in[i].priority = 0;
			}
			s = freel[--nfree];
			slots[s] = (struct slot){mmo_mono_us(), first, cnt, true};
			err = evlog_client_send(c, s + 1, in, cnt);
			if (err) {
				snprintf(p->why, sizeof(p->why), "send failed: %s",
				         mmo_strerror(err));
				p->failed = true;
				goto out;
			}
			now = mmo_mono_us();
		}

		/* Wait for a reply, or until the next send is due. */
		if (nfree == W) {
			wait = (rcount ? hold_until : due) - now; /* nothing in flight */
			bench_sleep_us(wait < 1 ? 1 : wait);
			continue;
		}
		if (!nfree || (!rcount && next >= p->quota))
			wait = -1;
		else
			wait = (rcount || now < hold_until ? hold_until : due) - now;
		if (wait < 0 || wait >= 1000)
			err = evlog_client_recv(c, wait < 0 ? -1 : (int)(wait / 1000), &req_id,
			                        &status, seqs, errs, K, &n);
		else
			err = evlog_client_recv(c, 0, &req_id, &status, seqs, errs, K, &n);
		if (err == MMO_ETIMEOUT) {
			if (wait < 0 && !bench_log_interrupted) {
				snprintf(p->why, sizeof(p->why), "no ack within %d ms",
				         CLIENT_TIMEOUT_MS);
				p->failed = true;
				goto out;
			}
			if (wait >= 0 && wait < 1000)
				bench_sleep_us(wait < 50 ? wait : 50);
			continue;
		}
		/* Take this reply and every other one already here. */
		while (!err) {
			int64_t at = mmo_mono_us();
			struct slot *sl = req_id >= 1 && req_id <= W ? &slots[req_id - 1] : NULL;

			if (!sl || !sl->used) {
				snprintf(p->why, sizeof(p->why), "reply to unknown request %u",
				         req_id);
				p->failed = true;
				goto out;
			}
			sl->used = false;
			freel[nfree++] = req_id - 1;
			if (status == MMO_EBUSY) {
				retry[(rhead + rcount) % W] = sl->first;
				rcount++;
				p->busy++;
				hold_until = at + 1000;
			} else if (status) {
				snprintf(p->why, sizeof(p->why), "request refused: %s",
				         mmo_strerror(status));
				p->failed = true;
				goto out;
			} else if (n != sl->n) {
				snprintf(p->why, sizeof(p->why),
				         "reply with %zu results for %u events", n, sl->n);
				p->failed = true;
				goto out;
			} else {
				for (size_t i = 0; i < n; i++) {
					if (errs[i] && !p->rejected++)
						p->first_reject = errs[i];
				}
				bench_hist_add(&p->h, at - sl->t);
				acked += n;
				atomic_store(&p->acked, acked);
				p->t_done = at;
			}
			err = evlog_client_recv(c, 0, &req_id, &status, seqs, errs, K, &n);
		}
		if (err != MMO_ETIMEOUT) {
			snprintf(p->why, sizeof(p->why), "receive failed: %s", mmo_strerror(err));
			p->failed = true;
			goto out;
		}
	}
	if (acked < p->quota && !p->failed) {
		snprintf(p->why, sizeof(p->why), "bench_log_interrupted");
		p->failed = true;
	}
out:
	evlog_client_close(c);
	free(slots);
	free(freel);
	free(retry);
	free(scratch);
	free(in);
	free(seqs);
	free(errs);
	atomic_store(&p->finished, true);
	return NULL;
}

struct log_result {
	double secs, per_s, avg_batch, commit_avg_us, cpu_pct, disk_per_event;
	uint64_t p50, p99, pmax, batches, batch_max, commit_max_us, busy, late;
	long rss_start, rss_end, anon_start, anon_end;
};

static int log_phase(const struct bench_log_config *cfg, const struct bench_evtpl *tpl,
                     const char *dir, unsigned run_no, struct log_result *res, char *why, size_t wl)
{
	struct evlog_opts lo = {.dir = dir, .nosync = cfg->nosync};
	struct evlog_server_opts so = {0};
	struct log_run run = {.cfg = cfg, .tpl = tpl};
	struct producer *prods = NULL;
	struct bench_hist *all = NULL;
	struct evlog_stats st;
	struct bench_progress pg;
	evlog *log = NULL;
	evlog_server *srv = NULL;
	void *sctx = NULL;
	char bus[64], msg[256];
	unsigned started = 0;
	bool barrier = false;
	int64_t cpu0, t_end = 0;
	uint64_t io0;
	int err, rc = -1;

	prods = calloc(cfg->producers, sizeof(*prods));
	all = calloc(1, sizeof(*all));
	sctx = zmq_ctx_new();
	run.zctx = zmq_ctx_new();
	if (!prods || !all || !sctx || !run.zctx) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	err = evlog_open(&lo, &log, msg, sizeof(msg));
	if (err) {
		snprintf(why, wl, "%s", msg);
		goto out;
	}
	so.log = log;
	so.zctx = sctx;
	so.ingest = run.ingest;
	so.bus = bus;
	for (int tries = 0;; tries++) {
		snprintf(run.ingest, sizeof(run.ingest), "tcp://127.0.0.1:%u", bench_free_port());
		snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%u", bench_free_port());
		err = evlog_server_start(&so, &srv, msg, sizeof(msg));
		if (!err)
			break;
		if (tries == 4) {
			snprintf(why, wl, "cannot start the log: %s", msg);
			goto out;
		}
	}
	if (pthread_barrier_init(&run.go, NULL, cfg->producers + 1)) {
		snprintf(why, wl, "cannot create a barrier");
		goto out;
	}
	barrier = true;
	for (unsigned i = 0; i < cfg->producers; i++) {
		struct producer *p = &prods[i];
		uint64_t share = cfg->events / cfg->producers;

		p->run = &run;
		p->id = i;
		p->base = share * i +
		          (i < cfg->events % cfg->producers ? i : cfg->events % cfg->producers);
		p->quota = share + (i < cfg->events % cfg->producers ? 1 : 0);
		if (pthread_create(&p->th, NULL, log_producer, p)) {
			/* The barrier counts every producer: fail the run the hard way. */
			fprintf(stderr, "mmo %s: cannot start producer thread\n", BENCH_LOG_CMD);
			exit(EXIT_FAIL);
		}
		started++;
	}
	cpu0 = bench_self_cpu_us();
	io0 = bench_io_write_bytes(getpid());
	run.t0 = mmo_mono_us();
	pg = (struct bench_progress){run.t0, run.t0, 0};
	pthread_barrier_wait(&run.go);
	/* Every client is connected now (each asked for the head). */
	res->rss_start = bench_pid_status(0, "VmRSS");
	res->anon_start = bench_pid_status(0, "RssAnon");

	for (;;) {
		uint64_t done = 0;
		unsigned fin = 0;

		for (unsigned i = 0; i < cfg->producers; i++) {
			done += atomic_load(&prods[i].acked);
			fin += atomic_load(&prods[i].finished);
		}
		if (fin == cfg->producers)
			break;
		bench_progress_tick(&pg, "log", run_no, done, cfg->events);
		bench_sleep_us(20000);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(prods[i].th, NULL);
	started = 0;
	res->cpu_pct = 0;
	for (unsigned i = 0; i < cfg->producers; i++) {
		struct producer *p = &prods[i];

		if (p->failed) {
			snprintf(why, wl, "log producer %u: %s", i, p->why);
			goto out;
		}
		if (p->rejected) {
			snprintf(why, wl, "log refused %llu events (first: %s)",
			         (unsigned long long)p->rejected, mmo_strerror(p->first_reject));
			goto out;
		}
		bench_hist_merge(all, &p->h);
		res->busy += p->busy;
		res->late += p->late;
		if (p->t_done > t_end)
			t_end = p->t_done;
	}
	res->rss_end = bench_pid_status(0, "VmRSS");
	res->anon_end = bench_pid_status(0, "RssAnon");
	res->secs = (double)(t_end - run.t0) / 1e6;
	res->cpu_pct = 100.0 * (double)(bench_self_cpu_us() - cpu0) / (double)(t_end - run.t0);
	res->disk_per_event = (double)(bench_io_write_bytes(getpid()) - io0) / (double)cfg->events;
	res->per_s = (double)cfg->events / res->secs;
	res->p50 = bench_hist_quantile(all, 0.50);
	res->p99 = bench_hist_quantile(all, 0.99);
	res->pmax = all->max;
	evlog_server_stats(srv, &st);
	if (st.appended != cfg->events) {
		snprintf(why, wl, "the log appended %llu events, not %llu",
		         (unsigned long long)st.appended, (unsigned long long)cfg->events);
		goto out;
	}
	res->batches = st.batches;
	res->batch_max = st.batch_events_max;
	res->avg_batch = st.batches ? (double)st.appended / (double)st.batches : 0;
	res->commit_avg_us = st.batches ? (double)st.commit_us_sum / (double)st.batches : 0;
	res->commit_max_us = st.commit_us_max;
	rc = 0;
out:
	if (started) {
		/* Only reached if the barrier was never passed: impossible today. */
		for (unsigned i = 0; i < started; i++)
			pthread_join(prods[i].th, NULL);
	}
	if (barrier)
		pthread_barrier_destroy(&run.go);
	evlog_server_stop(srv);
	evlog_close(log);
	if (run.zctx)
		zmq_ctx_term(run.zctx);
	if (sctx)
		zmq_ctx_term(sctx);
	free(prods);
	free(all);
	return rc;
}

/* ------------------------------------------------------------ the command */

static void log_help(FILE *f)
{
	fprintf(
	    f,
	    "usage: mmo bench log [options]\n"
	    "Producers send encoded events over ZeroMQ (TCP loopback) to a log running in\n"
	    "this process, as fast as it acks them (or at --rate). In the same run and with\n"
	    "the same event count and size it measures raw LMDB appends (MDB_APPEND, the\n"
	    "log's average batch size, durable commits, no indexes) and Redis Streams XADD\n"
	    "through pipelined hiredis connections against a redis-server it starts with\n"
	    "appendonly yes and appendfsync always.\n"
	    "  --events N         events per phase (default 200000)\n"
	    "  --size BYTES       encoded mmo.Event size (default 200; player.move, or\n"
	    "                     world.reject for sizes a move cannot reach)\n"
	    "  --producers P      producer threads and connections (default 4, max %d)\n"
	    "  --window W         requests in flight per producer (default 64, max %d)\n"
	    "  --per-request K    events per request (default 1, max %d); Redis keeps\n"
	    "                     W x K XADDs in flight, the same number of events\n"
	    "  --runs R           runs; each is printed, then the medians (default 3)\n"
	    "  --rate EV_PER_S    offered load in total; 0 = as fast as possible (default).\n"
	    "                     Log and Redis producers are paced; ack latency is then\n"
	    "                     the latency at that load\n"
	    "  --players N        distinct player ids (default 10000; 16 regions)\n"
	    "  --data DIR         where the temporary folder goes (default $TMPDIR or /tmp);\n"
	    "                     put it on the disk under test. It is removed at the end\n"
	    "  --redis-server PATH  (default /usr/bin/redis-server)\n"
	    "  --skip-redis       no Redis phase (redis_xadd_per_s=0 ratio_vs_redis=0.00)\n"
	    "  --sync full|none   durable commits everywhere (default), or none: no fsync in\n"
	    "                     the log, raw LMDB (MDB_NOSYNC) and Redis (appendfsync no)\n"
	    "Every option may also come from MMO_<OPTION>, e.g. MMO_EVENTS.\n"
	    "The last line of the output is:\n"
	    "  log_append events_per_s=N p50_ack_us=N p99_ack_us=N raw_lmdb_per_s=N\n"
	    "             redis_xadd_per_s=N ratio_vs_redis=R ratio_vs_raw=R\n"
	    "(one line, medians over the runs). Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	    PRODUCERS_MAX, WINDOW_MAX, EVLOG_REQ_MAX);
}

static int parse_config(int argc, char **argv, struct bench_log_config *cfg)
{
	static const struct option lo[] = {{"events", required_argument, 0, 'n'},
	                                   {"size", required_argument, 0, 's'},
	                                   {"producers", required_argument, 0, 'p'},
	                                   {"window", required_argument, 0, 'w'},
	                                   {"per-request", required_argument, 0, 'k'},
	                                   {"runs", required_argument, 0, 'r'},
	                                   {"rate", required_argument, 0, 'R'},
	                                   {"players", required_argument, 0, 'P'},
	                                   {"data", required_argument, 0, 'd'},
	                                   {"redis-server", required_argument, 0, 'S'},
	                                   {"skip-redis", no_argument, 0, 'x'},
	                                   {"sync", required_argument, 0, 'y'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_n = NULL, *a_s = NULL, *a_p = NULL, *a_w = NULL, *a_k = NULL, *a_r = NULL,
	           *a_R = NULL, *a_P = NULL, *a_d = NULL, *a_S = NULL, *a_y = NULL, *s;
	uint64_t v;
	int c;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n': a_n = optarg; break;
		case 's': a_s = optarg; break;
		case 'p': a_p = optarg; break;
		case 'w': a_w = optarg; break;
		case 'k': a_k = optarg; break;
		case 'r': a_r = optarg; break;
		case 'R': a_R = optarg; break;
		case 'P': a_P = optarg; break;
		case 'd': a_d = optarg; break;
		case 'S': a_S = optarg; break;
		case 'x': cfg->skip_redis = true; break;
		case 'y': a_y = optarg; break;
		case 'h': log_help(stdout); return -1;
		default: log_help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err(BENCH_LOG_CMD, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!bench_parse_num(BENCH_LOG_CMD, "events", cli_opt("events", a_n, "200000"), 1,
	                     1000000000000ULL, &cfg->events) ||
	    !bench_parse_num(BENCH_LOG_CMD, "producers", cli_opt("producers", a_p, "4"), 1,
	                     PRODUCERS_MAX, &v))
		return EXIT_USAGE;
	cfg->producers = (unsigned)v;
	s = cli_opt("size", a_s, "200");
	if (!cli_parse_size(s, &cfg->size) || cfg->size == 0 || cfg->size > MMO_RECORD_MAX) {
		cli_err(BENCH_LOG_CMD, "--size takes a byte count, not '%s'", s);
		return EXIT_USAGE;
	}
	if (!bench_parse_num(BENCH_LOG_CMD, "window", cli_opt("window", a_w, "64"), 1, WINDOW_MAX,
	                     &v))
		return EXIT_USAGE;
	cfg->window = (unsigned)v;
	if (!bench_parse_num(BENCH_LOG_CMD, "per-request", cli_opt("per-request", a_k, "1"), 1,
	                     EVLOG_REQ_MAX, &v))
		return EXIT_USAGE;
	cfg->per_req = (unsigned)v;
	if (!bench_parse_num(BENCH_LOG_CMD, "runs", cli_opt("runs", a_r, "3"), 1, RUNS_MAX, &v))
		return EXIT_USAGE;
	cfg->runs = (unsigned)v;
	if (!bench_parse_num(BENCH_LOG_CMD, "rate", cli_opt("rate", a_R, "0"), 0, 100000000,
	                     &cfg->rate) ||
	    !bench_parse_num(BENCH_LOG_CMD, "players", cli_opt("players", a_P, "10000"), 1, 1000000,
	                     &v))
		return EXIT_USAGE;
	cfg->players = (unsigned)v;
	cfg->data = cli_opt("data", a_d, NULL);
	cfg->redis_path = cli_opt("redis-server", a_S, "/usr/bin/redis-server");
	s = cli_opt("sync", a_y, "full");
	if (!strcmp(s, "none")) {
		cfg->nosync = true;
	} else if (strcmp(s, "full")) {
		cli_err(BENCH_LOG_CMD, "--sync takes full or none, not '%s'", s);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int bench_log(int argc, char **argv)
{
	struct bench_log_config cfg = {0};
	struct bench_evtpl *tpl = calloc(1, sizeof(*tpl));
	double l_rate[RUNS_MAX], l_p50[RUNS_MAX], l_p99[RUNS_MAX], r_rate[RUNS_MAX],
	    x_rate[RUNS_MAX], x_p50[RUNS_MAX], x_p99[RUNS_MAX];
	double m_rate, m_p50, m_p99, m_raw, m_redis = 0, ratio_redis = 0, ratio_raw;
	struct sigaction sa = {0}, old_int, old_term, old_pipe;
	char root[4096] = "", dir[4200], why[512] = "";
	const char *base;
	char rate_s[32] = "max";
	struct statfs sf;
	size_t lo, hi;
	int rc;

	if (!tpl)
		return EXIT_FAIL;
	rc = parse_config(argc, argv, &cfg);
	if (rc) {
		free(tpl);
		return rc < 0 ? EXIT_OK : rc;
	}
	if (bench_tpl_make(tpl, cfg.size, &lo, &hi)) {
		cli_err(BENCH_LOG_CMD,
		        "cannot build an event of %zu bytes: --size must be in %zu..%zu", cfg.size,
		        lo, hi);
		free(tpl);
		return EXIT_USAGE;
	}

	base = cfg.data ? cfg.data
	                : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	snprintf(root, sizeof(root), "%s/mmo-bench.XXXXXX", base);
	if (!mkdtemp(root)) {
		cli_err(BENCH_LOG_CMD, "cannot create a folder in %s: %s", base, strerror(errno));
		free(tpl);
		return EXIT_FAIL;
	}
	if (cfg.rate)
		snprintf(rate_s, sizeof(rate_s), "%llu", (unsigned long long)cfg.rate);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);

	printf("bench log: events=%llu size=%zu type=%s id_bytes=%zu/%zu/%zu stored_record=%zu "
	       "producers=%u window=%u per_request=%u runs=%u rate=%s sync=%s cpus=%ld data=%s\n",
	       (unsigned long long)cfg.events, tpl->len, tpl->type, tpl->id_len[0], tpl->id_len[1],
	       tpl->id_len[2], EVLOG_HDR_LEN + tpl->len, cfg.producers, cfg.window, cfg.per_req,
	       cfg.runs, rate_s, cfg.nosync ? "none" : "full", sysconf(_SC_NPROCESSORS_ONLN), root);
	fflush(stdout);
	if (cfg.nosync)
		fprintf(stderr, "bench: warning: --sync none: nothing is fsynced; the figures are "
		                "not durable throughput\n");
	if (statfs(root, &sf) == 0 && sf.f_type == TMPFS_MAGIC)
		fprintf(stderr,
		        "bench: warning: %s is on tmpfs, where fsync costs nothing; use "
		        "--data on a real disk\n",
		        root);

	for (unsigned r = 0; r < cfg.runs; r++) {
		struct log_result L = {0};
		struct bench_raw_result R = {0};
		struct bench_redis_result X = {0};

		snprintf(dir, sizeof(dir), "%s/run%u-log", root, r + 1);
		if (log_phase(&cfg, tpl, dir, r + 1, &L, why, sizeof(why)))
			goto fail;
		bench_rm_tree(dir);
		printf("run %u log: events_per_s=%.0f secs=%.2f p50_ack_us=%llu p99_ack_us=%llu "
		       "max_ack_us=%llu batches=%llu avg_batch=%.1f max_batch=%llu "
		       "commit_avg_us=%.0f commit_max_us=%llu busy=%llu late_sends=%llu "
		       "cpu_pct=%.0f disk_bytes_per_event=%.0f rss_start_kb=%ld rss_end_kb=%ld "
		       "anon_start_kb=%ld "
		       "anon_end_kb=%ld\n",
		       r + 1, L.per_s, L.secs, (unsigned long long)L.p50, (unsigned long long)L.p99,
		       (unsigned long long)L.pmax, (unsigned long long)L.batches, L.avg_batch,
		       (unsigned long long)L.batch_max, L.commit_avg_us,
		       (unsigned long long)L.commit_max_us, (unsigned long long)L.busy,
		       (unsigned long long)L.late, L.cpu_pct, L.disk_per_event, L.rss_start,
		       L.rss_end, L.anon_start, L.anon_end);
		fflush(stdout);

		snprintf(dir, sizeof(dir), "%s/run%u-raw", root, r + 1);
		if (bench_log_raw_phase(&cfg, tpl, dir, (uint64_t)(L.avg_batch + 0.5), r + 1, &R,
		                        why, sizeof(why)))
			goto fail;
		bench_rm_tree(dir);
		printf(
		    "run %u raw_lmdb: per_s=%.0f secs=%.2f record_bytes=%zu batch=%llu txns=%llu "
		    "disk_bytes_per_event=%.0f\n",
		    r + 1, R.per_s, R.secs, EVLOG_HDR_LEN + tpl->len, (unsigned long long)R.batch,
		    (unsigned long long)R.txns, R.disk_per_event);
		fflush(stdout);

		if (!cfg.skip_redis) {
			snprintf(dir, sizeof(dir), "%s/run%u-redis", root, r + 1);
			if (bench_log_redis_phase(&cfg, tpl, dir, r + 1, &X, why, sizeof(why)))
				goto fail;
			bench_rm_tree(dir);
			printf("run %u redis_xadd: per_s=%.0f secs=%.2f p50_ack_us=%llu "
			       "p99_ack_us=%llu server_cpu_pct=%.0f disk_bytes_per_event=%.0f\n",
			       r + 1, X.per_s, X.secs, (unsigned long long)X.p50,
			       (unsigned long long)X.p99, X.server_cpu_pct, X.disk_per_event);
			fflush(stdout);
		}
		l_rate[r] = L.per_s;
		l_p50[r] = (double)L.p50;
		l_p99[r] = (double)L.p99;
		r_rate[r] = R.per_s;
		x_rate[r] = X.per_s;
		x_p50[r] = (double)X.p50;
		x_p99[r] = (double)X.p99;
	}

	m_rate = bench_median(l_rate, cfg.runs);
	m_p50 = bench_median(l_p50, cfg.runs);
	m_p99 = bench_median(l_p99, cfg.runs);
	m_raw = bench_median(r_rate, cfg.runs);
	ratio_raw = m_raw > 0 ? m_rate / m_raw : 0;
	printf("median log: events_per_s=%.0f p50_ack_us=%.0f p99_ack_us=%.0f\n", m_rate, m_p50,
	       m_p99);
	printf("median raw_lmdb: per_s=%.0f\n", m_raw);
	if (!cfg.skip_redis) {
		m_redis = bench_median(x_rate, cfg.runs);
		ratio_redis = m_redis > 0 ? m_rate / m_redis : 0;
		printf("median redis_xadd: per_s=%.0f p50_ack_us=%.0f p99_ack_us=%.0f\n", m_redis,
		       bench_median(x_p50, cfg.runs), bench_median(x_p99, cfg.runs));
	}
	if (cfg.rate) {
		printf("target: p99_ack_us <= 2000 at %llu events/s offered: %s (p99 %.0f us, "
		       "achieved %.0f events/s)\n",
		       (unsigned long long)cfg.rate, m_p99 <= 2000 ? "met" : "MISSED", m_p99,
		       m_rate);
		printf("note: with --rate the rates and ratios are those of the offered load\n");
	} else {
		printf("target: ratio_vs_redis >= 1.5: %s\n", cfg.skip_redis       ? "not measured"
		                                              : ratio_redis >= 1.5 ? "met"
		                                                                   : "MISSED");
		printf("target: ratio_vs_raw >= 0.4: %s\n", ratio_raw >= 0.4 ? "met" : "MISSED");
	}
	printf("log_append events_per_s=%.0f p50_ack_us=%.0f p99_ack_us=%.0f raw_lmdb_per_s=%.0f "
	       "redis_xadd_per_s=%.0f ratio_vs_redis=%.2f ratio_vs_raw=%.2f\n",
	       m_rate, m_p50, m_p99, m_raw, m_redis, ratio_redis, ratio_raw);
	fflush(stdout);
	rc = EXIT_OK;
	goto out;

fail:
	cli_err(BENCH_LOG_CMD, "%s", bench_log_interrupted ? "bench_log_interrupted" : why);
	rc = EXIT_FAIL;
out:
	bench_redis_stop(&bench_log_redis_pid);
	bench_rm_tree(root);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	free(tpl);
	return rc;
}
