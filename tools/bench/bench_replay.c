/* bench_replay.c - `mmo bench replay`: the fold rate of `mmo replay` against
 * its physical limit, a bare LMDB cursor scan of the same records, in one run.
 *
 * The log is a game played by the world's own rules (not measured): P
 * players register, then log in, move, attack their neighbours and log out
 * as the gateway would send it (random "gw:" event ids), in batches of
 * intents; after each batch the pure fold (world_step) decides them and
 * their outcomes ("w:<seq>:<k>") are appended in one more batch, as the live
 * world does. Appends are nosync: generation is not what is measured.
 *
 * Each run then has two phases over the same records, from the page cache,
 * each mapping the log afresh:
 *   raw     an LMDB cursor over the events table, MDB_FIRST to the end,
 *           adding up a byte at each end of every record;
 *   replay  replay_run() to the head: the code path of `mmo replay`
 *           (read-only log, no snapshot), rate = records / seconds as
 *           `mmo replay` prints it.
 * A generated log's final state is also hashed by the generator: each
 * replay must rebuild exactly that state.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bench_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"
#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "replay/replay.h"
#include "projector/world/world.h"

#define CMD            "bench replay"
#define RUNS_MAX       99
#define INTENT_BATCH   2048   /* intents per append; their outcomes follow in one more */
#define ENC_CAP        1024   /* bytes of one encoded generated event, at most */
#define BYTES_PER_EV   600    /* disk estimate per generated event (LMDB, ids), generous */
#define STEP_US        100000 /* game clock per batch of intents */
#define PROGRESS_EVERY 65536

struct config {
	uint64_t events;
	unsigned players, runs;
	const char *data; /* a data folder to reuse or fill; NULL: a temporary one */
};

static volatile sig_atomic_t interrupted;
static volatile uint64_t sink; /* the raw scan's sum: keeps it from being optimised away */

static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(130);
	interrupted = 1;
}

/* ------------------------------------------------------------ helpers */

static bool has_file(const char *dir, const char *name)
{
	char p[8800];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

/* Is dir absent, or a folder with nothing (but a partial log) in it? */
static bool empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		        !strcmp(e->d_name, "log.partial"); /* an interrupted generation */
	closedir(d);
	return empty;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

struct tick {
	const char *what;
	int64_t t0, last;
	uint64_t last_done;
};

/* Progress on stderr, at most once a second. */
static void tick(struct tick *t, uint64_t done, uint64_t total, bool force)
{
	int64_t now = mmo_mono_us();

	if (!force && now - t->last < 1000000)
		return;
	fprintf(stderr, "bench: %s: %llu/%llu (%.0f/s now, %.0f/s overall)\n", t->what,
	        (unsigned long long)done, (unsigned long long)total,
	        now > t->last ? (double)(done - t->last_done) * 1e6 / (double)(now - t->last) : 0,
	        now > t->t0 ? (double)done * 1e6 / (double)(now - t->t0) : 0);
	t->last = now;
	t->last_done = done;
}

/* ------------------------------------------------------------ generation */

/* One intent being built: the builder and the strings it borrows. */
struct pending {
	struct mmo_ev b;
	char eid[32], pid[24], def[24], name[24], rid[MMO_ID_MAX + 1];
};

struct gen {
	const struct config *cfg;
	evlog *log;
	world *w;
	uint64_t rng, head;
	int64_t ts;
	struct pending *pend; /* INTENT_BATCH */
	uint8_t *ibuf, *obuf; /* encoded intents / outcomes */
	struct evlog_in *in;  /* WORLD_OUTCOME_MAX * INTENT_BATCH */
	struct evlog_out *out;
	uint64_t rec_bytes; /* stored bytes of the records appended */
	uint64_t kinds[4];  /* facts, intents, outcomes, ignored */
};

static void gen_free(struct gen *g)
{
	free(g->pend);
	free(g->ibuf);
	free(g->obuf);
	free(g->in);
	free(g->out);
}

static void new_eid(struct gen *g, char eid[32])
{
	uint64_t a = splitmix(&g->rng), b = splitmix(&g->rng);

	/* As the gateway makes them: "gw:" and 24 random hex digits. */
	snprintf(eid, 32, "gw:%016llx%08llx", (unsigned long long)a,
	         (unsigned long long)(b & 0xffffffffULL));
}

static void player_id(unsigned p, char *buf, size_t cap)
{
	snprintf(buf, cap, "player-%06u", p);
}

/* Append n encoded events at the game clock; every one must be new. */
static int append(struct gen *g, size_t n, char *why, size_t wl)
{
	int err;

	if (!n)
		return 0;
	err = evlog_append(g->log, g->in, n, g->ts, g->out);
	if (err) {
		snprintf(why, wl, "generating the log: append: %s", mmo_errdesc(err));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (g->out[i].err || g->out[i].dup) {
			snprintf(why, wl, "generating the log: event %zu of a batch refused: %s", i,
			         g->out[i].dup ? "duplicate" : mmo_errdesc(g->out[i].err));
			return -1;
		}
		g->rec_bytes += EVLOG_HDR_LEN + g->in[i].len;
	}
	g->head = g->out[n - 1].seq;
	return 0;
}

static int encode(struct gen *g, const Mmo__Event *ev, uint8_t *buf, size_t *used, size_t k,
                  char *why, size_t wl)
{
	size_t len;
	int err = mmo_event_encode(ev, buf + *used, ENC_CAP, &len);

	if (err) {
		snprintf(why, wl, "generating the log: encode %s: %s", ev->type, mmo_errdesc(err));
		return -1;
	}
	g->in[k] = (struct evlog_in){buf + *used, len, 0};
	*used += len;
	return 0;
}

/* A step of at most 2 units per axis towards home, or around it. */
static double step_to(uint64_t r, double at, double home)
{
	double d = home - at;

	if (d > 4)
		return 2;
	if (d < -4)
		return -2;
	return (double)(r % 5) - 2;
}

/* The next intent (or an event the world ignores) of a random player.
 * Players go about in parties of 8 around a home point near the spawn
 * point and attack their party; a dead player waits for the respawn. */
static void make_intent(struct gen *g, struct pending *pe)
{
	static const char *const skills[] = {"fireball", "slash", "fireball", "slash", "punch"};
	const struct world_rules *rules = world_rules();
	unsigned players = g->cfg->players, p = 0, roll = 0, party, d;
	uint64_t r = 0;
	struct mmo_ev *b = &pe->b;
	struct world_player pl;
	bool known = false;

	for (int tries = 0; tries < 4; tries++) {
		r = splitmix(&g->rng);
		p = (unsigned)(r % players);
		roll = (unsigned)((r >> 32) % 100);
		player_id(p, pe->pid, sizeof(pe->pid));
		known = world_player_get(g->w, pe->pid, &pl) == MMO_OK;
		if (!known || pl.alive || g->ts - pl.died_at >= rules->respawn_delay_us)
			break;
	}
	new_eid(g, pe->eid);
	if (roll < 2) { /* the gateway's statistics: logged, ignored by the world */
		mmo_ev_init(b, "stats.update", pe->eid, NULL, NULL);
		b->body.stats_update.name = "online_players";
		b->body.stats_update.value = (double)(r % 5000);
		return;
	}
	party = p / 8;
	snprintf(pe->rid, sizeof(pe->rid), "%s", known ? pl.region_id : "");
	if (!known || !pl.online) {
		mmo_ev_init(b, "player.login", pe->eid, pe->pid, NULL);
		snprintf(pe->name, sizeof(pe->name), "user%u", p);
		b->body.player_login.session_id = pe->eid + 3;
		b->body.player_login.username = pe->name;
	} else if (roll < 4) {
		mmo_ev_init(b, "player.logout", pe->eid, pe->pid, pe->rid);
		b->body.player_logout.session_id = pe->eid + 3;
		b->body.player_logout.reason = "client";
	} else if (roll < 59) {
		double hx = rules->spawn.x + (double)(party % 25) * 30 - 360;
		double hy = rules->spawn.y + (double)(party / 25 % 25) * 30 - 360;

		mmo_ev_init(b, "player.move", pe->eid, pe->pid, pe->rid);
		mmo_ev_set_pos(b, pl.pos.x + step_to(splitmix(&g->rng), pl.pos.x, hx),
		               pl.pos.y + step_to(splitmix(&g->rng), pl.pos.y, hy), pl.pos.z);
	} else {
		d = party * 8 + (p % 8 + 1 + (unsigned)(splitmix(&g->rng) % 7)) % 8;
		player_id(d < players ? d : (p + 1) % players, pe->def, sizeof(pe->def));
		mmo_ev_init(b, "combat.attack", pe->eid, pe->pid, pe->rid);
		b->body.combat_attack.defender_id = pe->def;
		b->body.combat_attack.skill_id = (char *)skills[(r >> 40) % 5];
	}
}

/* Register every player, then play until the head reaches cfg->events. */
static int generate(struct gen *g, char *why, size_t wl)
{
	struct world_outcome o;
	struct tick t = {"generate (not measured)", mmo_mono_us(), 0, 0};
	size_t n, used;

	t.last = t.t0;
	/* The players: player.register facts. */
	for (unsigned p = 0; p < g->cfg->players;) {
		n = 0;
		used = 0;
		for (; p < g->cfg->players && n < INTENT_BATCH; p++, n++) {
			struct pending *pe = &g->pend[n];

			player_id(p, pe->pid, sizeof(pe->pid));
			snprintf(pe->name, sizeof(pe->name), "user%u", p);
			new_eid(g, pe->eid);
			mmo_ev_init(&pe->b, "player.register", pe->eid, pe->pid, NULL);
			pe->b.body.player_register.username = pe->name;
			if (encode(g, &pe->b.ev, g->ibuf, &used, n, why, wl))
				return -1;
		}
		if (append(g, n, why, wl))
			return -1;
		for (size_t i = 0; i < n; i++) {
			g->pend[i].b.ev.seq = g->out[i].seq;
			g->pend[i].b.ev.ts = g->out[i].ts;
			world_step(g->w, &g->pend[i].b.ev, NULL);
		}
		g->kinds[0] += n;
	}

	/* The game: a batch of intents, then their outcomes in one batch. */
	while (g->head < g->cfg->events) {
		size_t no = 0, oused = 0;

		if (interrupted) {
			snprintf(why, wl, "interrupted");
			return -1;
		}
		g->ts += STEP_US;
		used = 0;
		for (n = 0; n < INTENT_BATCH; n++) {
			make_intent(g, &g->pend[n]);
			if (encode(g, &g->pend[n].b.ev, g->ibuf, &used, n, why, wl))
				return -1;
		}
		if (append(g, n, why, wl))
			return -1;
		for (size_t i = 0; i < n; i++) {
			Mmo__Event *ev = &g->pend[i].b.ev;
			int err;

			ev->seq = g->out[i].seq;
			ev->ts = g->out[i].ts;
			if (world_kind(ev) != WORLD_INTENT) {
				g->kinds[3]++;
				continue;
			}
			g->kinds[1]++;
			err = world_step(g->w, ev, &o);
			if (err) {
				snprintf(why, wl,
				         "generating the log: the world cannot fold seq %llu: %s",
				         (unsigned long long)ev->seq, mmo_errdesc(err));
				return -1;
			}
			for (size_t k = 0; k < o.n; k++) {
				if (encode(g, &o.ev[k].b.ev, g->obuf, &oused, no++, why, wl))
					return -1;
			}
		}
		if (append(g, no, why, wl))
			return -1;
		g->kinds[2] += no;
		tick(&t, g->head, g->cfg->events, false);
	}
	tick(&t, g->head, g->cfg->events, true);
	return 0;
}

/* Generate a log in logdir; *hash receives the generator's final state hash. */
static int gen_log(const struct config *cfg, const char *logdir, uint8_t hash[WORLD_HASH_LEN],
                   char *why, size_t wl)
{
	struct evlog_opts lo = {.dir = logdir, .nosync = true};
	struct gen g = {.cfg = cfg, .rng = 0x6d6d6f2d62656e63ULL, .ts = 1767225600LL * 1000000};
	size_t ocap = (size_t)INTENT_BATCH * WORLD_OUTCOME_MAX;
	int64_t t0 = mmo_mono_us();
	char msg[512];
	double secs;
	int rc = -1, err;

	/* The map is sparse: room for the events at a generous size each. */
	lo.map_size = (size_t)cfg->events * 2 * BYTES_PER_EV + ((size_t)1 << 30);
	if (lo.map_size < ((size_t)16 << 30))
		lo.map_size = 0;
	g.pend = calloc(INTENT_BATCH, sizeof(*g.pend));
	g.ibuf = malloc((size_t)INTENT_BATCH * ENC_CAP);
	g.obuf = malloc(ocap * ENC_CAP);
	g.in = calloc(ocap, sizeof(*g.in));
	g.out = calloc(ocap, sizeof(*g.out));
	if (!g.pend || !g.ibuf || !g.obuf || !g.in || !g.out) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	if ((err = world_new(WORLD_DEFAULT_SEED, &g.w))) {
		snprintf(why, wl, "world: %s", mmo_errdesc(err));
		goto out;
	}
	if ((err = evlog_open(&lo, &g.log, msg, sizeof(msg)))) {
		snprintf(why, wl, "%s", msg);
		goto out;
	}
	if (generate(&g, why, wl))
		goto out;
	/* The replay's state at the head: the last record folded is an outcome. */
	world_set_seq(g.w, g.head);
	if ((err = world_hash(g.w, hash))) {
		snprintf(why, wl, "hashing the generated state: %s", mmo_errdesc(err));
		goto out;
	}
	secs = (double)(mmo_mono_us() - t0) / 1e6;
	printf("generate: records=%llu facts=%llu intents=%llu outcomes=%llu ignored=%llu "
	       "players=%zu avg_record_bytes=%.0f secs=%.1f per_s=%.0f (nosync appends; not "
	       "measured)\n",
	       (unsigned long long)g.head, (unsigned long long)g.kinds[0],
	       (unsigned long long)g.kinds[1], (unsigned long long)g.kinds[2],
	       (unsigned long long)g.kinds[3], world_player_count(g.w),
	       g.head ? (double)g.rec_bytes / (double)g.head : 0, secs,
	       secs > 0 ? (double)g.head / secs : 0);
	fflush(stdout);
	rc = 0;
out:
	evlog_close(g.log);
	world_free(g.w);
	gen_free(&g);
	return rc;
}

/* ------------------------------------------------------------ phases */

struct run_result {
	double secs, per_s;
	uint64_t records;
};

static int raw_fail(MDB_env *env, MDB_txn *txn, int rc, const char *what, char *why, size_t wl)
{
	snprintf(why, wl, "raw scan: %s: %s", what, mdb_strerror(rc));
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return -1;
}

/* A bare cursor over the events table, touching both ends of every record. */
static int raw_scan(const char *logdir, unsigned run_no, uint64_t head, struct run_result *res,
                    char *why, size_t wl)
{
	char what[64];
	struct tick t;
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_cursor *cur;
	MDB_dbi dbi;
	MDB_val k, v;
	uint64_t n = 0, sum = 0;
	int64_t t0;
	int rc;

	if ((rc = mdb_env_create(&env))) {
		snprintf(why, wl, "raw scan: %s", mdb_strerror(rc));
		return -1;
	}
	mdb_env_set_maxdbs(env, 16);
	if ((rc = mdb_env_open(env, logdir, MDB_RDONLY | MDB_NOTLS, 0640)))
		return raw_fail(env, NULL, rc, "open", why, wl);
	snprintf(what, sizeof(what), "run %u raw scan", run_no);
	t0 = mmo_mono_us();
	t = (struct tick){what, t0, t0, 0};
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)))
		return raw_fail(env, NULL, rc, "begin", why, wl);
	if ((rc = mdb_dbi_open(txn, "events", 0, &dbi)) || (rc = mdb_cursor_open(txn, dbi, &cur)))
		return raw_fail(env, txn, rc, "events table", why, wl);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = v.mv_data;

		if (v.mv_size)
			sum += (uint64_t)p[0] + p[v.mv_size - 1];
		if (++n % PROGRESS_EVERY == 0) {
			if (interrupted)
				break;
			tick(&t, n, head, false);
		}
	}
	res->secs = (double)(mmo_mono_us() - t0) / 1e6;
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS)
		return raw_fail(env, txn, rc, "next", why, wl);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	if (interrupted) {
		snprintf(why, wl, "interrupted");
		return -1;
	}
	sink += sum;
	res->records = n;
	res->per_s = res->secs > 0 ? (double)n / res->secs : 0;
	return 0;
}

static void replay_progress(uint64_t done, uint64_t total, double per_s, void *arg)
{
	fprintf(stderr, "bench: run %u replay: %llu/%llu (%.0f/s overall)\n", *(unsigned *)arg,
	        (unsigned long long)done, (unsigned long long)total, per_s);
}

/* replay_run() to the head, as `mmo replay --data LOG` does it. */
static int replay_phase(const char *logdir, unsigned run_no, const uint8_t *want_hash,
                        struct run_result *res, uint64_t *anomalies, char *why, size_t wl)
{
	struct evlog_opts lo = {.dir = logdir, .readonly = true};
	struct replay_opts ro = {0};
	struct replay_result rr;
	uint8_t h[WORLD_HASH_LEN];
	char msg[512], hx[2 * WORLD_HASH_LEN + 1], wx[2 * WORLD_HASH_LEN + 1];
	evlog *log = NULL;
	world *w = NULL;
	int err, rc = -1;

	if ((err = evlog_open(&lo, &log, msg, sizeof(msg)))) {
		snprintf(why, wl, "replay: %s", msg);
		return -1;
	}
	ro.log = log;
	ro.seed = WORLD_DEFAULT_SEED;
	ro.progress = replay_progress;
	ro.progress_arg = &run_no;
	err = replay_run(&ro, &w, &rr);
	if (err) {
		snprintf(why, wl, "replay: %s%s%.300s", mmo_errdesc(err), rr.what[0] ? ": " : "",
		         rr.what);
		goto out;
	}
	if (rr.pending_seq)
		fprintf(stderr,
		        "bench: run %u replay: stopped at seq %llu: the intent at seq %llu has no "
		        "outcome in the log (the rate counts the records read)\n",
		        run_no, (unsigned long long)rr.seq, (unsigned long long)rr.pending_seq);
	if (want_hash) {
		if ((err = world_hash(w, h))) {
			snprintf(why, wl, "replay: hashing the state: %s", mmo_errdesc(err));
			goto out;
		}
		if (memcmp(h, want_hash, WORLD_HASH_LEN)) {
			world_hash_hex(h, hx);
			world_hash_hex(want_hash, wx);
			snprintf(why, wl,
			         "replay rebuilt state %s at seq %llu, the generator had %s: the "
			         "fold and the log disagree",
			         hx, (unsigned long long)rr.seq, wx);
			goto out;
		}
	}
	*anomalies = world_anomalies(w, NULL, NULL);
	res->records = rr.records;
	res->secs = rr.seconds;
	res->per_s = rr.seconds > 0 ? (double)rr.records / rr.seconds : 0;
	rc = 0;
out:
	world_free(w);
	evlog_close(log);
	return rc;
}

/* ------------------------------------------------------------ the command */

static void help(FILE *f)
{
	fprintf(
	    f,
	    "usage: mmo bench replay [options]\n"
	    "The fold rate of `mmo replay` (events/s) and, in the same run, its raw limit:\n"
	    "a bare LMDB cursor scan of the same records. The log is a game played by the\n"
	    "world's rules (registers, logins, moves, attacks and their outcomes), written\n"
	    "with nosync appends; its generation is not measured. Both phases read from\n"
	    "the page cache and map the log afresh each run.\n"
	    "  --events N     records in the generated log (default 5000000; at least\n"
	    "                 the players' registrations)\n"
	    "  --players P    players (default 10000)\n"
	    "  --runs R       runs; each is printed, then the medians (default 3, max %d)\n"
	    "  --data DIR     reuse the log in DIR/log (or DIR) if there is one; if DIR is\n"
	    "                 empty or absent, generate into DIR/log and keep it. Without\n"
	    "                 --data: a temporary folder in $TMPDIR or /tmp, removed at the end\n"
	    "Every option may also come from MMO_<OPTION>, e.g. MMO_EVENTS.\n"
	    "The last line of the output is:\n"
	    "  replay events_per_s=N raw_scan_per_s=N ratio_vs_raw=R\n"
	    "(medians over the runs). Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	    RUNS_MAX);
}

static int parse_config(int argc, char **argv, struct config *cfg)
{
	static const struct option lo[] = {
	    {"events", required_argument, 0, 'n'}, {"players", required_argument, 0, 'P'},
	    {"runs", required_argument, 0, 'r'},   {"data", required_argument, 0, 'd'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	const char *a_n = NULL, *a_P = NULL, *a_r = NULL, *a_d = NULL;
	uint64_t v;
	int c;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n': a_n = optarg; break;
		case 'P': a_P = optarg; break;
		case 'r': a_r = optarg; break;
		case 'd': a_d = optarg; break;
		case 'h': help(stdout); return -1;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err(CMD, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!bench_parse_num(CMD, "players", cli_opt("players", a_P, "10000"), 1, 1000000, &v))
		return EXIT_USAGE;
	cfg->players = (unsigned)v;
	if (!bench_parse_num(CMD, "events", cli_opt("events", a_n, "5000000"), 1, 10000000000ULL,
	               &cfg->events) ||
	    !bench_parse_num(CMD, "runs", cli_opt("runs", a_r, "3"), 1, RUNS_MAX, &v))
		return EXIT_USAGE;
	cfg->runs = (unsigned)v;
	if (cfg->events < cfg->players) {
		cli_err(CMD, "--events %llu is fewer than the %u players' registrations",
		        (unsigned long long)cfg->events, cfg->players);
		return EXIT_USAGE;
	}
	cfg->data = cli_opt("data", a_d, NULL);
	return EXIT_OK;
}

/* Refuse to start when the folder's file system cannot hold the log. */
static bool room_for(const char *dir, uint64_t events)
{
	struct statvfs sv;
	uint64_t need = events * BYTES_PER_EV, have;

	if (statvfs(dir, &sv) != 0)
		return true; /* unknown: let LMDB say */
	have = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (have >= need)
		return true;
	cli_err(CMD, "%s has %.1f GB free, a log of %llu events needs about %.1f GB", dir,
	        (double)have / 1e9, (unsigned long long)events, (double)need / 1e9);
	return false;
}

int bench_replay(int argc, char **argv)
{
	struct config cfg = {0};
	struct sigaction sa = {0}, old_int, old_term;
	double rp[RUNS_MAX], rw[RUNS_MAX], m_rp, m_rw, ratio;
	char root[4096] = "", logdir[4200], partial[4200] = "", why[768] = "";
	uint8_t hash[WORLD_HASH_LEN];
	bool temp = false, generated = false;
	uint64_t head = 0, anomalies = 0;
	const char *base;
	evlog *l = NULL;
	struct evlog_opts lo = {0};
	int rc;

	rc = parse_config(argc, argv, &cfg);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	/* Where the log is: reused, generated into --data, or a temporary folder. */
	if (cfg.data) {
		snprintf(root, sizeof(root), "%s", cfg.data);
		snprintf(logdir, sizeof(logdir), "%s/log", root);
		if (!has_file(logdir, "data.mdb")) {
			if (has_file(root, "data.mdb")) {
				snprintf(logdir, sizeof(logdir), "%s", root);
			} else if (!empty_dir(root)) {
				cli_err(CMD,
				        "%s holds no log (DIR/log/data.mdb) and is not empty: "
				        "give an empty folder to generate into",
				        root);
				return EXIT_USAGE;
			} else {
				generated = true;
			}
		}
	} else {
		base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(root, sizeof(root), "%s/mmo-bench.XXXXXX", base);
		if (!mkdtemp(root)) {
			cli_err(CMD, "cannot create a folder in %s: %s", base, strerror(errno));
			return EXIT_FAIL;
		}
		snprintf(logdir, sizeof(logdir), "%s/log", root);
		temp = generated = true;
	}
	if (generated) {
		if (mkdir(root, 0750) && errno != EEXIST) {
			cli_err(CMD, "cannot create %s: %s", root, strerror(errno));
			return EXIT_FAIL;
		}
		if (!room_for(root, cfg.events)) {
			if (temp)
				bench_rm_tree(root);
			return EXIT_FAIL;
		}
	}

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	printf("bench replay: events=%llu players=%u runs=%u log=%s cpus=%ld data=%s\n",
	       (unsigned long long)cfg.events, cfg.players, cfg.runs,
	       generated ? "generated" : "reused", sysconf(_SC_NPROCESSORS_ONLN), logdir);
	fflush(stdout);
	if (generated) {
		/* Under another name until complete: a partial log is never reused. */
		snprintf(partial, sizeof(partial), "%s/log.partial", root);
		bench_rm_tree(partial);
		if (gen_log(&cfg, partial, hash, why, sizeof(why)))
			goto fail;
		if (rename(partial, logdir)) {
			snprintf(why, sizeof(why), "cannot rename %s: %s", partial,
			         strerror(errno));
			goto fail;
		}
	}

	lo.dir = logdir;
	lo.readonly = true;
	if ((rc = evlog_open(&lo, &l, why, sizeof(why))) || (rc = evlog_head(l, &head, NULL))) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s", mmo_errdesc(rc));
		evlog_close(l);
		goto fail;
	}
	evlog_close(l);
	printf("log: records=%llu bytes=%llu (data.mdb, %.0f per record)%s\n",
	       (unsigned long long)head, (unsigned long long)bench_file_bytes(logdir, "data.mdb"),
	       head ? (double)bench_file_bytes(logdir, "data.mdb") / (double)head : 0,
	       !generated && head < cfg.events ? "; fewer than --events: reused as it is" : "");
	fflush(stdout);

	for (unsigned r = 0; r < cfg.runs; r++) {
		struct run_result R = {0}, P = {0};

		if (raw_scan(logdir, r + 1, head, &R, why, sizeof(why)))
			goto fail;
		printf("run %u raw_scan: per_s=%.0f secs=%.3f records=%llu\n", r + 1, R.per_s,
		       R.secs, (unsigned long long)R.records);
		fflush(stdout);
		if (replay_phase(logdir, r + 1, generated ? hash : NULL, &P, &anomalies, why,
		                 sizeof(why)))
			goto fail;
		printf("run %u replay: events_per_s=%.0f secs=%.3f records=%llu anomalies=%llu "
		       "state=%s\n",
		       r + 1, P.per_s, P.secs, (unsigned long long)P.records,
		       (unsigned long long)anomalies,
		       generated ? "same as generator" : "unchecked");
		fflush(stdout);
		rw[r] = R.per_s;
		rp[r] = P.per_s;
	}
	m_rp = bench_median(rp, cfg.runs);
	m_rw = bench_median(rw, cfg.runs);
	ratio = m_rw > 0 ? m_rp / m_rw : 0;
	printf("median replay: events_per_s=%.0f\n", m_rp);
	printf("median raw_scan: per_s=%.0f\n", m_rw);
	printf("target: ratio_vs_raw >= 0.2 on one core: %s\n", ratio >= 0.2 ? "met" : "MISSED");
	printf("replay events_per_s=%.0f raw_scan_per_s=%.0f ratio_vs_raw=%.3f\n", m_rp, m_rw,
	       ratio);
	fflush(stdout);
	rc = EXIT_OK;
	goto out;

fail:
	cli_err(CMD, "%s", interrupted ? "interrupted" : why);
	rc = EXIT_FAIL;
	if (!temp && partial[0])
		bench_rm_tree(partial); /* an interrupted generation into --data */
out:
	if (temp)
		bench_rm_tree(root);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}
