/* test_serve.c - the world through the real `mmo serve` (issue 3, Tests).
 *
 * A generated game (fixed seed, 2,000 players, 14,000 intents: logins,
 * logouts, moves, attacks) is played by four producer threads over the TCP
 * ingest of `mmo serve` (roles log,world). Then, from the outside:
 *   - every intent has its outcomes exactly once (ids w:<seq>:0..n-1, in
 *     order, none doubled, none missing) and no intent is doubled;
 *   - every snapshot the world wrote to DATA/world has the state hash that
 *     `mmo replay --to SEQ` rebuilds from the log, and the last one (written
 *     at SIGTERM) is at the head and equals the replay to the head;
 *   - `mmo replay --verify` agrees with every logged outcome.
 * The crash cases `kill -9` the server after a seeded random delay while the
 * producers are still sending, right after a burst of 1,000 more intents (so
 * the world is caught with intents to answer), restart it on the same data
 * (the producers resend what was not acknowledged: the same event ids, so
 * the log answers duplicates with their original seqs), and check the same.
 *
 * MMO_KEEP=1 keeps the data folders. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <pthread.h>

#include <cmocka.h>

#include "log_check.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"
#include "projector/world/world.h"

#define SEED       20240611ULL /* the game generator's seed */
#define NPLAYERS   2000
#define NTHREADS   4
#define NBOSSES    8    /* p0..p7 draw a crowd: deaths and target_dead */
#define REQ        25   /* events per ingest request */
#define NACTIONS   3000 /* actions per producer, after its players' logins */
#define OWNED      (NPLAYERS / NTHREADS)
#define NREQ       ((OWNED + NACTIONS) / REQ) /* requests per producer */
#define NINTENTS   (NTHREADS * NREQ * REQ)
#define SNAP_EVERY "2000"
#define TIMEOUT_MS 1500 /* client timeout: a request lost in a kill is resent after it */
#define BURST      1000 /* intents sent at once just before a kill: the world lags */
#define PACE_MS    20   /* a producer sends a request every PACE_MS: a load of ~3 s */

struct serve {
	char dir[256], data[300], ingest[64], bus[64];
	char logfile[300]; /* of the current run */
	int runs;
	pid_t pid;
};

struct producer {
	int t;
	const char *ingest;
	void *zctx;
	pthread_t th;
	uint64_t rng, eid;
	double x[OWNED], y[OWNED]; /* where each owned player should be */
	uint8_t buf[REQ][512];
	atomic_uint acked; /* requests acknowledged */
	unsigned resends;
	char err[256]; /* set on failure (no cmocka outside the main thread) */
};

static atomic_bool stopping;

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

static unsigned rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(*s >> 33);
}

static bool file_has(const char *path, const char *needle)
{
	char *buf = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && getline(&buf, &cap, f) > 0)
		found = strstr(buf, needle) != NULL;
	free(buf);
	fclose(f);
	return found;
}

/* The last line of path that contains needle, from needle on, into out. */
static bool file_last(const char *path, const char *needle, char *out, size_t cap)
{
	char *buf = NULL, *p;
	size_t bcap = 0;
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (getline(&buf, &bcap, f) > 0) {
		if ((p = strstr(buf, needle))) {
			snprintf(out, cap, "%s", p);
			found = true;
		}
	}
	free(buf);
	fclose(f);
	return found;
}

/* ---------------------------------------------------------------- mmo serve */

static void serve_start(struct serve *s)
{
	/* The roles under test; views and gateway need Redis and an HTTP port. */
	char *argv[] = {(char *)ts_mmo_bin(), "serve",     "--roles", "log,world",
	                "--data",             s->data,     "--ingest", s->ingest,
	                "--bus",              s->bus,      "--snapshot-every", SNAP_EVERY,
	                NULL};

	snprintf(s->logfile, sizeof(s->logfile), "%s/serve-%d.log", s->dir, ++s->runs);
	s->pid = ts_spawn(argv, s->logfile);
	assert_true(s->pid > 0);
	if (!ts_wait_log(s->logfile, "serve: ready:", 20000))
		fail_msg("mmo serve did not get ready in 20 s (see %s)", s->logfile);
}

/* SIGTERM: it must exit 0 and say "stopped:"; returns the head it reports. */
static uint64_t serve_stop(struct serve *s)
{
	unsigned long long head = 0;
	char line[512];
	int st = ts_stop(s->pid, SIGTERM, 30000);

	s->pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("mmo serve did not exit 0 on SIGTERM (status 0x%x; see %s)", st,
		         s->logfile);
	if (!file_last(s->logfile, "serve: stopped:", line, sizeof(line)) ||
	    sscanf(line, "serve: stopped: head_seq=%llu", &head) != 1)
		fail_msg("mmo serve did not log 'stopped:' (see %s)", s->logfile);
	if (file_has(s->logfile, " ERROR "))
		fail_msg("mmo serve logged an error (see %s)", s->logfile);
	return head;
}

static void serve_init(struct serve *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(ts_tmpdir(s->dir, sizeof(s->dir)), 0);
	snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
	snprintf(s->ingest, sizeof(s->ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(s->bus, sizeof(s->bus), "tcp://127.0.0.1:%d", ts_free_port());
}

static void serve_done(struct serve *s)
{
	if (s->pid > 0)
		ts_stop(s->pid, SIGKILL, 5000);
	if (getenv("MMO_KEEP"))
		print_message("kept %s\n", s->dir);
	else
		ts_rmrf(s->dir);
}

/* ---------------------------------------------------------------- the game */

/* Send one request until it is acknowledged, reopening the client after a
 * failure (the server was killed or is restarting). The event ids are fixed,
 * so a resend of a request that did commit gets the original seqs back.
 * Returns 0, or -1 with why filled. */
static int send_until_acked(void *zctx, const char *ingest, evlog_client **cli,
                            const struct evlog_in *in, size_t n, unsigned *resends, char *why,
                            size_t cap)
{
	uint64_t seqs[EVLOG_REQ_MAX];
	int errs[EVLOG_REQ_MAX], err;
	int64_t deadline = mmo_mono_us() + 60 * 1000000LL;

	for (;;) {
		err = *cli ? evlog_client_append(*cli, in, n, seqs, errs) : MMO_ECLOSED;
		if (err == MMO_OK)
			break;
		if (atomic_load(&stopping) || mmo_mono_us() > deadline) {
			snprintf(why, cap, "a request was not acknowledged for 60 s: %s",
			         mmo_strerror(err));
			return -1;
		}
		/* A fresh client: the old one's request died with the server. */
		(*resends)++;
		evlog_client_close(*cli);
		*cli = NULL;
		sleep_ms(50);
		if (evlog_client_open(zctx, ingest, TIMEOUT_MS, cli))
			*cli = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (errs[i] != MMO_OK || seqs[i] == 0) {
			snprintf(why, cap, "event %zu of a request refused: %s", i,
			         mmo_strerror(errs[i]));
			return -1;
		}
	}
	return 0;
}

/* Register p0..p(NPLAYERS-1) (facts: the world applies them, no outcome). */
static void register_all(struct serve *s, void *zctx)
{
	static uint8_t buf[500][256];
	struct evlog_in in[500];
	evlog_client *cli = NULL;
	unsigned resends = 0;
	char why[256];

	assert_int_equal(evlog_client_open(zctx, s->ingest, TIMEOUT_MS, &cli), MMO_OK);
	for (unsigned p0 = 0; p0 < NPLAYERS; p0 += 500) {
		for (unsigned j = 0; j < 500; j++) {
			char pid[16], name[16], eid[32];
			struct mmo_ev b;
			size_t len;

			snprintf(pid, sizeof(pid), "p%u", p0 + j);
			snprintf(name, sizeof(name), "user%u", p0 + j);
			snprintf(eid, sizeof(eid), "reg:%u", p0 + j);
			mmo_ev_init(&b, "player.register", eid, pid, NULL);
			b.body.player_register.username = name;
			assert_int_equal(mmo_event_encode(&b.ev, buf[j], sizeof(buf[j]), &len),
			                 MMO_OK);
			in[j] = (struct evlog_in){buf[j], len, MMO_PRIO_HIGH};
		}
		if (send_until_acked(zctx, s->ingest, &cli, in, 500, &resends, why, sizeof(why)))
			fail_msg("registering: %s", why);
	}
	evlog_client_close(cli);
}

/* Event j of the producer's next request: its players' logins first, then
 * random actions. Positions are tracked here as if every move were
 * accepted; a few moves are meant to be refused (too fast, out of bounds). */
static void build(struct producer *p, unsigned j, unsigned k, struct mmo_ev *b, char *pid,
                  char *aux, char *eid)
{
	static const char *skills[] = {"punch", "slash", "fireball", "slash"};
	unsigned r, i, n = k * REQ + j;

	snprintf(eid, 32, "s%d:%llu", p->t, (unsigned long long)++p->eid);
	if (n < OWNED) {
		snprintf(pid, 16, "p%u", n * NTHREADS + (unsigned)p->t);
		mmo_ev_init(b, "player.login", eid, pid, NULL);
		return;
	}
	r = rnd(&p->rng);
	i = (r >> 8) % OWNED;
	snprintf(pid, 16, "p%u", i * NTHREADS + (unsigned)p->t);
	switch (r % 20) {
	case 0:
		mmo_ev_init(b, rnd(&p->rng) % 3 ? "player.logout" : "player.login", eid, pid, NULL);
		break;
	case 1: mmo_ev_init(b, "player.login", eid, pid, NULL); break;
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
	case 7:
	case 8:
	case 9: {
		unsigned m = rnd(&p->rng);
		double x = p->x[i] + (double)(m % 7) - 3, y = p->y[i] + (double)((m >> 4) % 7) - 3;

		mmo_ev_init(b, "player.move", eid, pid, NULL);
		if (m % 64 == 0) {
			mmo_ev_set_pos(b, x + 300, y, 0); /* too fast */
		} else if (m % 64 == 1) {
			mmo_ev_set_pos(b, -5, y, 0); /* out of bounds */
		} else {
			mmo_ev_set_pos(b, x, y, 0);
			p->x[i] = x;
			p->y[i] = y;
		}
		break;
	}
	default: {
		unsigned m = rnd(&p->rng);
		unsigned me = i * NTHREADS + (unsigned)p->t;

		mmo_ev_init(b, "combat.attack", eid, pid, NULL);
		if (m % 4 == 0) {
			snprintf(aux, 16, "p%u", (m >> 4) % NBOSSES);
			b->body.combat_attack.skill_id = "fireball";
		} else {
			snprintf(aux, 16, "p%u", (me + 1 + (m >> 4) % 3) % NPLAYERS);
			b->body.combat_attack.skill_id = (char *)skills[(m >> 8) % 4];
		}
		b->body.combat_attack.defender_id = aux;
		break;
	}
	}
}

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct evlog_in in[REQ];
	evlog_client *cli = NULL;
	int64_t t0 = mmo_mono_us();

	if (evlog_client_open(p->zctx, p->ingest, TIMEOUT_MS, &cli))
		cli = NULL;
	for (unsigned i = 0; i < OWNED; i++)
		p->x[i] = p->y[i] = 5000; /* the spawn point */
	for (unsigned k = 0; k < NREQ; k++) {
		int64_t due = t0 + (int64_t)k * PACE_MS * 1000, now = mmo_mono_us();

		if (due > now)
			sleep_ms((int)((due - now) / 1000));
		for (unsigned j = 0; j < REQ; j++) {
			char pid[16], aux[16], eid[32];
			struct mmo_ev b;
			size_t len;

			build(p, j, k, &b, pid, aux, eid);
			if (mmo_event_encode(&b.ev, p->buf[j], sizeof(p->buf[j]), &len)) {
				snprintf(p->err, sizeof(p->err), "event %s does not encode", eid);
				goto out;
			}
			in[j] = (struct evlog_in){p->buf[j], len, MMO_PRIO_HIGH};
		}
		if (send_until_acked(p->zctx, p->ingest, &cli, in, REQ, &p->resends, p->err,
		                     sizeof(p->err)))
			goto out;
		atomic_fetch_add(&p->acked, 1);
	}
out:
	evlog_client_close(cli);
	return NULL;
}

static void producers_start(struct producer *ps, const char *ingest, void *zctx)
{
	atomic_store(&stopping, false);
	for (int t = 0; t < NTHREADS; t++) {
		memset(&ps[t], 0, sizeof(ps[t]));
		ps[t].t = t;
		ps[t].ingest = ingest;
		ps[t].zctx = zctx;
		ps[t].rng = SEED * 1000 + (uint64_t)t;
		assert_int_equal(pthread_create(&ps[t].th, NULL, produce, &ps[t]), 0);
	}
}

static unsigned producers_acked(struct producer *ps)
{
	unsigned n = 0;

	for (int t = 0; t < NTHREADS; t++)
		n += atomic_load(&ps[t].acked);
	return n;
}

static unsigned producers_join(struct producer *ps)
{
	unsigned resends = 0;

	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(ps[t].th, NULL);
		resends += ps[t].resends;
	}
	for (int t = 0; t < NTHREADS; t++) {
		if (ps[t].err[0])
			fail_msg("producer %d: %s", t, ps[t].err);
	}
	assert_int_equal(producers_acked(ps), NTHREADS * NREQ);
	return resends;
}

/* ---------------------------------------------------------------- checks */

static evlog *log_open_ro(struct serve *s)
{
	char dir[400], msg[256];
	struct evlog_opts o = {0};
	evlog *log = NULL;

	snprintf(dir, sizeof(dir), "%s/log", s->data);
	o.dir = dir;
	o.readonly = true;
	if (evlog_open(&o, &log, msg, sizeof(msg)))
		fail_msg("opening the log read-only: %s", msg);
	return log;
}

/* The census of the log, read-only (the server may be writing: LMDB allows
 * one open of an environment per process, so open and close around it). */
static void census(struct serve *s, struct outcome_census *c, uint64_t *head)
{
	char why[256];
	evlog *log = log_open_ro(s);

	if (check_outcomes(log, c, why, sizeof(why)))
		fail_msg("%s", why);
	evlog_head(log, head, NULL);
	evlog_close(log);
}

/* Wait until every intent sent is answered (none doubled, none missing),
 * then until the head stays put: the world has folded its own outcomes. */
static uint64_t wait_all_answered(struct serve *s, uint64_t intents, struct outcome_census *c)
{
	uint64_t head = 0, last = 0;
	int stable = 0;

	for (int i = 0; i < 600; i++) {
		census(s, c, &head);
		if (c->intents == intents && c->answered == c->intents) {
			stable = head == last ? stable + 1 : 0;
			if (stable == 3)
				break;
		}
		last = head;
		sleep_ms(100);
	}
	if (c->intents != intents || c->answered != c->intents)
		fail_msg("the world did not answer everything in 60 s: %llu of %llu intents "
		         "(%llu sent); first unanswered seq %llu (see %s)",
		         (unsigned long long)c->answered, (unsigned long long)c->intents,
		         (unsigned long long)intents, (unsigned long long)c->first_unanswered,
		         s->logfile);
	/* Nothing else in the log: no intent or outcome doubled. */
	assert_int_equal(head, NPLAYERS + c->intents + c->outcomes);
	sleep_ms(300); /* the world's poll is 100 ms: let it fold the last outcomes */
	return head;
}

struct replayed {
	unsigned long long seq, head;
	char hash[2 * WORLD_HASH_LEN + 1];
};

/* Run `mmo replay --data DATA --quiet` plus args; returns its exit status. */
static int run_replay(struct serve *s, const char *a1, const char *a2, char *out, size_t cap)
{
	char *argv[] = {(char *)ts_mmo_bin(), "replay",   "--data", s->data, "--quiet",
	                (char *)a1,           (char *)a2, NULL};
	pid_t pid;
	int st;

	snprintf(out, cap, "%s/replay.out", s->dir);
	unlink(out);
	pid = ts_spawn(argv, out);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `mmo replay --to seq` (0: to the head): its summary line, parsed. */
static void replay_to(struct serve *s, uint64_t seq, struct replayed *r)
{
	char to[32], out[400], line[512];
	unsigned long long players;
	int rc;

	snprintf(to, sizeof(to), "%llu", (unsigned long long)seq);
	rc = run_replay(s, seq ? "--to" : NULL, to, out, sizeof(out));
	if (rc != 0)
		fail_msg("mmo replay --to %s exited %d (see %s)", to, rc, out);
	if (!file_last(out, "replay: seq=", line, sizeof(line)) ||
	    sscanf(line, "replay: seq=%llu head=%llu players=%llu entities=%*u hash=%64s", &r->seq,
	           &r->head, &players, r->hash) != 4)
		fail_msg("mmo replay printed no summary line (see %s)", out);
	assert_int_equal(players, NPLAYERS);
}

static void verify_ok(struct serve *s)
{
	char out[400];
	int rc = run_replay(s, "--verify", NULL, out, sizeof(out));

	if (rc != 0 || !file_has(out, "verify: ok"))
		fail_msg("mmo replay --verify exited %d (see %s)", rc, out);
}

/* Every snapshot in DATA/world is valid and has the hash of the replay to
 * its seq; the newest one is at the head and equals the replay to the head.
 * Returns how many were compared. */
static size_t snapshots_equal_replay(struct serve *s, uint64_t head)
{
	struct world_snapinfo info[WORLD_SNAP_KEEP];
	char dir[400], msg[256], hex[2 * WORLD_HASH_LEN + 1];
	struct replayed r;
	world_snapdb *db;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/world", s->data);
	if (world_snapdb_open(dir, true, &db, msg, sizeof(msg)))
		fail_msg("opening the snapshots read-only: %s", msg);
	assert_int_equal(world_snapdb_list(db, info, WORLD_SNAP_KEEP, &n), MMO_OK);
	for (size_t i = 0; i < n; i++) {
		uint8_t h[WORLD_HASH_LEN];
		world *w = NULL;

		if (!info[i].valid)
			fail_msg("snapshot at seq %llu is not valid",
			         (unsigned long long)info[i].seq);
		assert_int_equal(world_snapdb_get(db, info[i].seq, &w), MMO_OK);
		assert_int_equal(world_seq(w), info[i].seq);
		assert_int_equal(world_hash(w, h), MMO_OK);
		assert_memory_equal(h, info[i].hash, WORLD_HASH_LEN);
		world_free(w);
	}
	world_snapdb_close(db);
	/* every SNAP_EVERY records, plus the last one at stop */
	if (n < head / 2000)
		fail_msg("only %zu snapshots for %llu records", n, (unsigned long long)head);

	for (size_t i = 0; i < n; i++) {
		world_hash_hex(info[i].hash, hex);
		replay_to(s, info[i].seq, &r);
		assert_int_equal(r.seq, info[i].seq);
		if (strcmp(r.hash, hex))
			fail_msg("snapshot at seq %llu has hash %s, mmo replay --to %llu gives %s",
			         (unsigned long long)info[i].seq, hex,
			         (unsigned long long)info[i].seq, r.hash);
	}

	/* The last snapshot, written at SIGTERM, is the state at the head. */
	if (info[n - 1].seq != head)
		fail_msg("the last snapshot is at seq %llu, not at the head %llu",
		         (unsigned long long)info[n - 1].seq, (unsigned long long)head);
	world_hash_hex(info[n - 1].hash, hex);
	replay_to(s, 0, &r);
	assert_int_equal(r.seq, head);
	assert_int_equal(r.head, head);
	assert_string_equal(r.hash, hex);
	return n;
}

/* How often each outcome showed up: the game must have been a real one. */
struct variety {
	unsigned hit, miss, critical, death, spawn, update, too_fast, out_of_bounds, cooldown,
	    target_dead, out_of_range, already_online, not_logged_in;
};

static void variety(struct serve *s, struct variety *v)
{
	struct evlog_rec rec;
	evlog_iter *it;
	evlog *log = log_open_ro(s);

	memset(v, 0, sizeof(*v));
	assert_int_equal(evlog_iter_open(log, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	while (evlog_iter_next(it, &rec) == MMO_OK) {
		Mmo__Event *ev;
		const char *x;

		assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
		if (!strcmp(ev->type, "combat.result")) {
			x = ev->combat_result->result;
			v->hit += !strcmp(x, "hit");
			v->miss += !strcmp(x, "miss");
			v->critical += !strcmp(x, "critical");
		} else if (!strcmp(ev->type, "world.despawn")) {
			v->death += !strcmp(ev->world_despawn->reason, "death");
		} else if (!strcmp(ev->type, "world.spawn")) {
			v->spawn++;
		} else if (!strcmp(ev->type, "world.update")) {
			v->update++;
		} else if (!strcmp(ev->type, "world.reject")) {
			x = ev->world_reject->reason;
			v->too_fast += !strcmp(x, "too_fast");
			v->out_of_bounds += !strcmp(x, "out_of_bounds");
			v->cooldown += !strcmp(x, "cooldown");
			v->target_dead += !strcmp(x, "target_dead");
			v->out_of_range += !strcmp(x, "out_of_range");
			v->already_online += !strcmp(x, "already_online");
			v->not_logged_in += !strcmp(x, "not_logged_in");
		}
		mmo_event_free(ev);
	}
	evlog_iter_close(it);
	evlog_close(log);
}

/* ---------------------------------------------------------------- cases */

static void live_world_equals_replay_at_every_snapshot_and_at_the_head(void **state)
{
	struct producer *ps = calloc(NTHREADS, sizeof(*ps));
	struct outcome_census c;
	struct variety v;
	struct serve s;
	void *zctx = zmq_ctx_new();
	uint64_t head, stopped;
	int64_t t0 = mmo_mono_us();
	size_t nsnap;

	(void)state;
	assert_non_null(ps);
	serve_init(&s);
	serve_start(&s);
	register_all(&s, zctx);
	producers_start(ps, s.ingest, zctx);
	producers_join(ps);
	head = wait_all_answered(&s, NINTENTS, &c);
	print_message("%d intents answered by %llu outcomes in %.1f s (head %llu)\n", NINTENTS,
	              (unsigned long long)c.outcomes, (double)(mmo_mono_us() - t0) / 1e6,
	              (unsigned long long)head);
	stopped = serve_stop(&s);
	assert_int_equal(stopped, head);

	variety(&s, &v);
	print_message("hit %u miss %u critical %u death %u spawn %u update %u too_fast %u "
	              "out_of_bounds %u cooldown %u target_dead %u out_of_range %u "
	              "already_online %u not_logged_in %u\n",
	              v.hit, v.miss, v.critical, v.death, v.spawn, v.update, v.too_fast,
	              v.out_of_bounds, v.cooldown, v.target_dead, v.out_of_range, v.already_online,
	              v.not_logged_in);
	assert_true(v.hit && v.miss && v.critical && v.death && v.update && v.too_fast &&
	            v.out_of_bounds && v.cooldown && v.target_dead && v.out_of_range &&
	            v.already_online && v.not_logged_in);

	nsnap = snapshots_equal_replay(&s, head);
	verify_ok(&s);
	print_message("%zu snapshots equal mmo replay at their seq; verify ok; %.1f s\n", nsnap,
	              (double)(mmo_mono_us() - t0) / 1e6);
	zmq_ctx_term(zctx);
	serve_done(&s);
	free(ps);
}

/* BURST intents in one request (attacks and logins of random players),
 * acknowledged: committed, but the world has yet to answer them. */
static void burst(struct serve *s, void *zctx, uint64_t *rng)
{
	static uint8_t buf[BURST][256];
	static char pid[BURST][16], def[BURST][16], eid[BURST][32];
	struct evlog_in in[BURST];
	evlog_client *cli = NULL;
	unsigned resends = 0;
	char why[256];

	for (unsigned j = 0; j < BURST; j++) {
		unsigned r = rnd(rng), p = (r >> 4) % NPLAYERS;
		struct mmo_ev b;
		size_t len;

		snprintf(pid[j], sizeof(pid[j]), "p%u", p);
		snprintf(eid[j], sizeof(eid[j]), "burst:%u", j);
		if (r % 4 == 0) {
			mmo_ev_init(&b, "player.login", eid[j], pid[j], NULL);
		} else {
			mmo_ev_init(&b, "combat.attack", eid[j], pid[j], NULL);
			snprintf(def[j], sizeof(def[j]), "p%u", (p + 1 + (r >> 16) % 3) % NPLAYERS);
			b.body.combat_attack.defender_id = def[j];
			b.body.combat_attack.skill_id = "fireball";
		}
		assert_int_equal(mmo_event_encode(&b.ev, buf[j], sizeof(buf[j]), &len), MMO_OK);
		in[j] = (struct evlog_in){buf[j], len, MMO_PRIO_HIGH};
	}
	assert_int_equal(evlog_client_open(zctx, s->ingest, TIMEOUT_MS, &cli), MMO_OK);
	if (send_until_acked(zctx, s->ingest, &cli, in, BURST, &resends, why, sizeof(why)))
		fail_msg("the burst: %s", why);
	evlog_client_close(cli);
}

/* Kill -9 `mmo serve` delay_min + (0..delay_span) ms (seeded) into the
 * producers' load, right after a burst of intents (so the world has some
 * left to answer), restart it on the same data after restart_ms (longer than
 * the client timeout: the producers resend requests), finish the load. */
static void kill9_mid_load(uint64_t seed, int delay_min, int delay_span, int restart_ms)
{
	struct producer *ps = calloc(NTHREADS, sizeof(*ps));
	struct outcome_census c;
	struct serve s;
	void *zctx = zmq_ctx_new();
	uint64_t rng = seed, head, stopped;
	int64_t t0 = mmo_mono_us();
	int delay = delay_min + (int)(rnd(&rng) % (unsigned)delay_span);
	unsigned acked, resends;
	size_t nsnap;
	int st;

	assert_non_null(ps);
	serve_init(&s);
	serve_start(&s);
	register_all(&s, zctx);
	producers_start(ps, s.ingest, zctx);
	sleep_ms(delay);
	burst(&s, zctx, &rng);
	st = ts_stop(s.pid, SIGKILL, 5000);
	s.pid = 0;
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	acked = producers_acked(ps);
	census(&s, &c, &head);
	print_message("kill -9 after %d ms: %u of %d requests acked, head %llu, %llu of %llu "
	              "intents answered\n",
	              delay, acked, NTHREADS * NREQ, (unsigned long long)head,
	              (unsigned long long)c.answered, (unsigned long long)c.intents);
	if (acked >= NTHREADS * NREQ) {
		atomic_store(&stopping, true);
		fail_msg("the load was over before the kill (%d ms): not mid-load", delay);
	}
	if (c.answered == c.intents)
		fail_msg("the world had answered everything before the kill: not mid-load");

	sleep_ms(restart_ms);
	serve_start(&s);
	resends = producers_join(ps);
	if (restart_ms > TIMEOUT_MS && resends == 0)
		fail_msg("down for %d ms, yet no producer resent a request", restart_ms);
	head = wait_all_answered(&s, NINTENTS + BURST, &c);
	stopped = serve_stop(&s);
	assert_int_equal(stopped, head);
	print_message("after the restart: %llu intents, %llu outcomes, each answered once; "
	              "%u requests resent\n",
	              (unsigned long long)c.intents, (unsigned long long)c.outcomes, resends);
	if (!file_has(s.logfile, "world: loaded snapshot at seq") &&
	    !file_has(s.logfile, "world: no usable snapshot"))
		fail_msg("the restarted world did not say where it started (see %s)", s.logfile);

	verify_ok(&s);
	nsnap = snapshots_equal_replay(&s, head);
	print_message("%zu snapshots equal mmo replay at their seq; verify ok; %.1f s\n", nsnap,
	              (double)(mmo_mono_us() - t0) / 1e6);
	zmq_ctx_term(zctx);
	serve_done(&s);
	free(ps);
}

static void kill9_early_in_load_then_restart_answers_each_intent_once(void **state)
{
	(void)state;
	kill9_mid_load(SEED + 1, 100, 300, 0);
}

static void kill9_mid_load_then_restart_answers_each_intent_once(void **state)
{
	(void)state;
	kill9_mid_load(SEED + 2, 800, 600, 2 * TIMEOUT_MS);
}

static void kill9_late_in_load_then_restart_answers_each_intent_once(void **state)
{
	(void)state;
	kill9_mid_load(SEED + 3, 1600, 800, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(live_world_equals_replay_at_every_snapshot_and_at_the_head),
	    cmocka_unit_test(kill9_early_in_load_then_restart_answers_each_intent_once),
	    cmocka_unit_test(kill9_mid_load_then_restart_answers_each_intent_once),
	    cmocka_unit_test(kill9_late_in_load_then_restart_answers_each_intent_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
