/* bench_audit.c - `mmo bench audit`: the auditors' two costs against their
 * limits, in one run (issue 6, Performance).
 *
 * Two logs are generated (nosync appends, not measured): the small one (1 M
 * events, or 100 k with --small) and the large one (10 M, or 1 M). Both
 * hold one target player with exactly K events spread evenly over the log;
 * the rest is P other players and player-less events, in a game's mix of
 * types (moves, attacks and their results, world updates, logins, security
 * and statistics events), with random "gw:" event ids as the gateway makes
 * them. Each log's secondary indexes are then brought to the head with
 * evlog_index_sync(), as the server's indexer would.
 *
 *   verify  on the small log, per run: evlog_verify() over the whole log with
 *           the index checks (what `mmo audit verify` does by default), and
 *           the hashing limit: SHA-256 of exactly the bytes the chain hashes
 *           (prev ‖ seq ‖ record after its hash) for every record, read with a
 *           bare LMDB cursor from the map, OpenSSL, in a tight loop (each hash
 *           is also compared with the stored one). For context: verify
 *           without the index checks, and one SHA-256 stream over all the
 *           records' bytes (what sha256sum of the bytes would do).
 *   query   evlog_query for the target player on both logs, every record
 *           returned and touched; after one untimed warm-up each, --repeat
 *           timed queries alternating between the logs; medians.
 */
#define OPENSSL_API_COMPAT 0x10101000L /* SHA256_Init & co: what the log uses */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <lmdb.h>
#include <openssl/sha.h>
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

#define CMD            "bench audit"
#define RUNS_MAX       99
#define REPEAT_MAX     999
#define GEN_BATCH      4096  /* events per append */
#define INDEX_CHUNK    65536 /* events per index transaction, as the server's indexer */
#define ENC_CAP        1024  /* bytes of one encoded generated event, at most */
#define BYTES_PER_EV   700   /* disk estimate per event (records, ids, indexes), generous */
#define SPAN_US        (30LL * 86400 * 1000000) /* a log covers 30 days */
#define TARGET         "player-000000"
#define PROGRESS_EVERY 65536

struct config {
	bool small;
	unsigned runs, repeat, players;
	uint64_t player_events;
	uint64_t n[2]; /* events of the small and the large log */
	const char *name[2];
	const char *data; /* parent of the temporary folder */
};

static volatile sig_atomic_t interrupted;
static volatile uint64_t sink; /* what the loops read: keeps them from being optimised away */

static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(130);
	interrupted = 1;
}

/* ------------------------------------------------------------ helpers */

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

struct tick {
	const char *what;
	int64_t t0, last;
	uint64_t last_done;
};

static void tick_init(struct tick *t, const char *what)
{
	t->what = what;
	t->t0 = t->last = mmo_mono_us();
	t->last_done = 0;
}

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

/* Build event i (seq = seq) into buf: the target's event number tj when
 * target, else a random player's or a player-less one, in a game's mix. */
static int build(const struct config *cfg, uint64_t i, uint64_t seq, bool target, uint64_t tj,
                 uint8_t *buf, size_t *len)
{
	static const char *const results[] = {"hit", "miss", "critical", "hit"};
	static const char *const skills[] = {"punch", "slash", "fireball"};
	/* The target cycles through the types a player's own events have. */
	static const unsigned target_kinds[] = {0, 1, 2, 0, 3, 4, 0, 1, 2, 5};
	char eid[48], pid[24], rid[24], def[24], sess[40], detail[96];
	uint64_t h = mix(i ^ 0x617564697462656eULL), h2 = mix(h);
	unsigned kind, p = 1 + (unsigned)(h % cfg->players), roll = (unsigned)((h >> 32) % 100);
	unsigned px = (unsigned)(mix(p) % 10000), py = (unsigned)(mix(p + 1) % 10000);
	double x = px + (double)(h2 % 1000) / 100.0, y = py + (double)((h2 >> 16) % 1000) / 100.0;
	struct mmo_ev b;
	bool outcome;
	int err;

	/* 0 move, 1 attack, 2 result, 3 update, 4 login, 5 logout, 6 reject,
	 * 7 security, 8 stats, 9 admin */
	if (target) {
		kind = target_kinds[tj % (sizeof(target_kinds) / sizeof(target_kinds[0]))];
		snprintf(pid, sizeof(pid), "%s", TARGET);
	} else {
		kind = roll < 36   ? 0
		       : roll < 50 ? 1
		       : roll < 64 ? 2
		       : roll < 76 ? 3
		       : roll < 81 ? 4
		       : roll < 85 ? 5
		       : roll < 90 ? 6
		       : roll < 93 ? 7
		       : roll < 99 ? 8
		                   : 9;
		snprintf(pid, sizeof(pid), "player-%06u", p);
	}
	snprintf(rid, sizeof(rid), "r_%u_%u", px / 500, py / 500);
	snprintf(def, sizeof(def), "player-%06u", 1 + (unsigned)((h2 >> 32) % cfg->players));
	outcome = kind == 2 || kind == 3 || kind == 6;
	if (outcome) /* as the world names them: w:<cause>:<k> */
		snprintf(eid, sizeof(eid), "w:%llu:0", (unsigned long long)(seq - 1));
	else
		snprintf(eid, sizeof(eid), "gw:%016llx%08llx", (unsigned long long)h2,
		         (unsigned long long)(mix(h2) & 0xffffffffULL));
	snprintf(sess, sizeof(sess), "%08llx-%04llx-4%03llx-a%03llx-%012llx",
	         (unsigned long long)(h2 >> 32), (unsigned long long)(h2 & 0xffff),
	         (unsigned long long)((h2 >> 16) & 0xfff), (unsigned long long)((h2 >> 28) & 0xfff),
	         (unsigned long long)(mix(h2 ^ 1) & 0xffffffffffffULL));

	switch (kind) {
	case 0:
		err = mmo_ev_init(&b, "player.move", eid, pid, rid);
		mmo_ev_set_pos(&b, x, y, 0);
		break;
	case 1:
		err = mmo_ev_init(&b, "combat.attack", eid, pid, rid);
		b.body.combat_attack.defender_id = def;
		b.body.combat_attack.skill_id = (char *)skills[h2 % 3];
		break;
	case 2:
		err = mmo_ev_init(&b, "combat.result", eid, pid, rid);
		b.body.combat_result.attacker_id = pid;
		b.body.combat_result.defender_id = def;
		b.body.combat_result.skill_id = (char *)skills[h2 % 3];
		b.body.combat_result.result = (char *)results[(h2 >> 8) % 4];
		b.body.combat_result.damage = (uint32_t)(5 + h2 % 30);
		b.body.combat_result.defender_hp = (uint32_t)((h2 >> 20) % 100);
		break;
	case 3:
		err = mmo_ev_init(&b, "world.update", eid, pid, rid);
		b.body.world_update.entity_id = pid;
		b.body.world_update.entity_type = "player";
		b.body.world_update.from_region_id = rid;
		mmo_ev_set_pos(&b, x, y, 0);
		break;
	case 4:
		err = mmo_ev_init(&b, "player.login", eid, pid, rid);
		b.body.player_login.session_id = sess;
		b.body.player_login.username = pid + 7;
		break;
	case 5:
		err = mmo_ev_init(&b, "player.logout", eid, pid, rid);
		b.body.player_logout.session_id = sess;
		b.body.player_logout.reason = "client";
		break;
	case 6:
		err = mmo_ev_init(&b, "world.reject", eid, pid, rid);
		snprintf(detail, sizeof(detail), "moved %.1f in %.2f s (max %.1f)",
		         (double)(h2 % 400) / 10.0, (double)(h2 % 90) / 100.0 + 0.1, 6.0);
		b.body.world_reject.reason = "too_fast";
		b.body.world_reject.detail = detail;
		break;
	case 7:
		err = mmo_ev_init(&b, "security.login_failed", eid, NULL, NULL);
		snprintf(detail, sizeof(detail), "10.%u.%u.%u", (unsigned)(h2 % 256),
		         (unsigned)((h2 >> 8) % 256), (unsigned)((h2 >> 16) % 256));
		b.body.security.kind = "login_failed";
		b.body.security.source = detail;
		b.body.security.count = (uint32_t)(1 + h2 % 20);
		b.body.security.window_start_us = 1767225600LL * 1000000;
		break;
	case 8:
		err = mmo_ev_init(&b, "stats.update", eid, NULL, NULL);
		b.body.stats_update.name = "online_players";
		b.body.stats_update.value = (double)(h2 % 50000);
		break;
	default:
		err = mmo_ev_init(&b, "admin.action", eid, NULL, NULL);
		b.body.admin_action.command = "user role";
		b.body.admin_action.actor = "ops";
		snprintf(detail, sizeof(detail), "grant auditor to player-%06u", p);
		b.body.admin_action.detail = detail;
		break;
	}
	if (err)
		return err;
	if (outcome)
		b.ev.cause_seq = seq - 1;
	return mmo_event_encode(&b.ev, buf, ENC_CAP, len);
}

/* Generate log number which into dir and index it to the head. */
static int gen_log(const struct config *cfg, int which, const char *dir, char *why, size_t wl)
{
	struct evlog_opts lo = {.dir = dir, .nosync = true};
	uint64_t n = cfg->n[which], K = cfg->player_events, j = 0, head = 0, indexed = 0;
	uint64_t nbatches = (n + GEN_BATCH - 1) / GEN_BATCH, bytes = 0;
	int64_t step = (int64_t)(SPAN_US / (int64_t)(nbatches ? nbatches : 1)), t0 = mmo_mono_us();
	int64_t ts = 1767225600LL * 1000000, t_gen;
	uint8_t *buf = malloc((size_t)GEN_BATCH * ENC_CAP);
	struct evlog_in *in = calloc(GEN_BATCH, sizeof(*in));
	struct evlog_out *out = calloc(GEN_BATCH, sizeof(*out));
	char what[96], msg[512];
	struct tick t;
	evlog *l = NULL;
	int err, rc = -1;

	lo.map_size = (size_t)n * 2 * BYTES_PER_EV + ((size_t)1 << 30);
	if (lo.map_size < ((size_t)16 << 30))
		lo.map_size = 0;
	if (!buf || !in || !out) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	if ((err = evlog_open(&lo, &l, msg, sizeof(msg)))) {
		snprintf(why, wl, "%s", msg);
		goto out;
	}
	snprintf(what, sizeof(what), "generate %s log (not measured)", cfg->name[which]);
	tick_init(&t, what);
	for (uint64_t i = 0; i < n;) {
		size_t k = 0, used = 0;

		if (interrupted) {
			snprintf(why, wl, "interrupted");
			goto out;
		}
		for (; i < n && k < GEN_BATCH; i++, k++) {
			/* The target's events: at j * n / K for j = 0 .. K-1. */
			bool target = j < K && i == j * n / K;

			err = build(cfg, i, i + 1, target, j, buf + used, &in[k].len);
			if (target)
				j++;
			if (err) {
				snprintf(why, wl, "generating event %llu: %s",
				         (unsigned long long)i, mmo_errdesc(err));
				goto out;
			}
			in[k].buf = buf + used;
			in[k].priority = 0;
			used += in[k].len;
			bytes += EVLOG_HDR_LEN + in[k].len;
		}
		ts += step;
		err = evlog_append(l, in, k, ts, out);
		for (size_t e = 0; !err && e < k; e++) {
			if (out[e].err || out[e].dup || out[e].seq != i - k + e + 1)
				err = out[e].err ? out[e].err : MMO_ECORRUPT;
		}
		if (err) {
			snprintf(why, wl, "generating the %s log: append: %s", cfg->name[which],
			         mmo_errdesc(err));
			goto out;
		}
		head = i;
		tick(&t, head, n, false);
	}
	tick(&t, head, n, true);
	t_gen = mmo_mono_us();

	/* As the server's indexer: the secondary indexes up to the head. */
	snprintf(what, sizeof(what), "index %s log (not measured)", cfg->name[which]);
	tick_init(&t, what);
	while (indexed < head) {
		uint64_t before = indexed;

		if (interrupted) {
			snprintf(why, wl, "interrupted");
			goto out;
		}
		err = evlog_index_sync(l, INDEX_CHUNK, &indexed);
		if (err || indexed == before) {
			snprintf(why, wl, "indexing the %s log stopped at seq %llu: %s",
			         cfg->name[which], (unsigned long long)indexed,
			         err ? mmo_errdesc(err) : "no progress");
			goto out;
		}
		tick(&t, indexed, head, false);
	}
	tick(&t, indexed, head, true);
	printf("generate %s: events=%llu target_events=%llu players=%u avg_record_bytes=%.0f "
	       "log_bytes=%llu index_bytes=%llu gen_secs=%.1f index_secs=%.1f (nosync; not "
	       "measured)\n",
	       cfg->name[which], (unsigned long long)head, (unsigned long long)j, cfg->players,
	       head ? (double)bytes / (double)head : 0,
	       (unsigned long long)bench_file_bytes(dir, "data.mdb"),
	       (unsigned long long)bench_file_bytes(dir, "index/data.mdb"), (double)(t_gen - t0) / 1e6,
	       (double)(mmo_mono_us() - t_gen) / 1e6);
	fflush(stdout);
	rc = 0;
out:
	evlog_close(l);
	free(buf);
	free(in);
	free(out);
	return rc;
}

/* ------------------------------------------------------------ verify */

struct hash_result {
	double limit_per_s, stream_per_s;
	uint64_t records;
};

/* The hashing limit over the log in dir: the chain's SHA-256 of every record
 * (each checked against the stored hash), then one stream over all bytes. */
static int hash_limit(const char *dir, unsigned run_no, uint64_t head, struct hash_result *res,
                      char *why, size_t wl)
{
	uint8_t prev[SHA256_DIGEST_LENGTH] = {0}, h[SHA256_DIGEST_LENGTH], s[8];
	char what[64];
	struct tick t;
	MDB_env *env;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	SHA256_CTX c;
	uint64_t n = 0, bad = 0;
	int64_t t0;
	int rc;

	if ((rc = mdb_env_create(&env))) {
		snprintf(why, wl, "hash limit: %s", mdb_strerror(rc));
		return -1;
	}
	mdb_env_set_maxdbs(env, 16);
	if ((rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0640)) ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
	    (rc = mdb_dbi_open(txn, "events", 0, &dbi)) || (rc = mdb_cursor_open(txn, dbi, &cur))) {
		snprintf(why, wl, "hash limit: %s", mdb_strerror(rc));
		goto fail;
	}

	/* Per record, exactly the chain step: SHA-256(prev ‖ seq ‖ record[32..]). */
	snprintf(what, sizeof(what), "run %u hash limit", run_no);
	tick_init(&t, what);
	t0 = mmo_mono_us();
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *p = v.mv_data;

		if (k.mv_size != 8 || v.mv_size < EVLOG_HDR_LEN) {
			snprintf(why, wl, "hash limit: a record of the events table is malformed");
			goto fail;
		}
		memcpy(s, k.mv_data, 8); /* the key is the seq, big-endian */
		SHA256_Init(&c);
		SHA256_Update(&c, prev, sizeof(prev));
		SHA256_Update(&c, s, sizeof(s));
		SHA256_Update(&c, p + EVLOG_HASH_LEN, v.mv_size - EVLOG_HASH_LEN);
		SHA256_Final(h, &c);
		bad += memcmp(h, p, EVLOG_HASH_LEN) != 0;
		memcpy(prev, h, sizeof(prev));
		if (++n % PROGRESS_EVERY == 0) {
			if (interrupted)
				break;
			tick(&t, n, head, false);
		}
	}
	res->limit_per_s = (double)n * 1e6 / (double)(mmo_mono_us() - t0 + 1);
	res->records = n;
	if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS) {
		snprintf(why, wl, "hash limit: %s", mdb_strerror(rc));
		goto fail;
	}
	if (bad) {
		snprintf(why, wl, "hash limit: %llu records do not hash to their stored hash",
		         (unsigned long long)bad);
		goto fail;
	}

	/* For context: one SHA-256 over all the records' bytes, as sha256sum. */
	snprintf(what, sizeof(what), "run %u stream hash", run_no);
	tick_init(&t, what);
	t0 = mmo_mono_us();
	n = 0;
	SHA256_Init(&c);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		SHA256_Update(&c, v.mv_data, v.mv_size);
		if (++n % PROGRESS_EVERY == 0) {
			if (interrupted)
				break;
			tick(&t, n, head, false);
		}
	}
	SHA256_Final(h, &c);
	sink += h[0];
	res->stream_per_s = (double)n * 1e6 / (double)(mmo_mono_us() - t0 + 1);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	if (interrupted) {
		snprintf(why, wl, "interrupted");
		return -1;
	}
	return 0;
fail:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return -1;
}

struct vprog {
	struct tick t;
};

static void verify_progress(uint64_t done, uint64_t total, void *arg)
{
	tick(&((struct vprog *)arg)->t, done, total, false);
}

/* evlog_verify over the whole log: events/s. */
static int verify_rate(evlog *l, unsigned run_no, bool indexes, double *per_s, char *why, size_t wl)
{
	struct evlog_verify_result res;
	struct vprog vp;
	char what[64];
	int64_t t0;
	int err;

	snprintf(what, sizeof(what), "run %u verify%s", run_no, indexes ? "" : " --no-indexes");
	tick_init(&vp.t, what);
	t0 = mmo_mono_us();
	err = evlog_verify(l, 1, 0, NULL, indexes, verify_progress, &vp, &res);
	*per_s = (double)res.checked * 1e6 / (double)(mmo_mono_us() - t0 + 1);
	if (err) {
		snprintf(why, wl, "verify: %s at seq %llu: %s", mmo_errdesc(err),
		         (unsigned long long)res.bad_seq, res.what);
		return -1;
	}
	if (interrupted) {
		snprintf(why, wl, "interrupted");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ query */

struct qstat {
	uint64_t matched, scanned, candidates;
	enum evlog_query_driver driver;
};

/* The target's events, every record touched; µs. */
static int query_once(evlog *l, struct qstat *st, double *us, char *why, size_t wl)
{
	struct evlog_query q = {.player = TARGET};
	struct evlog_rec rec;
	evlog_query_it *it;
	uint64_t sum = 0, n = 0;
	int64_t t0 = mmo_mono_us();
	int err;

	err = evlog_query_open(l, &q, &it);
	if (err) {
		snprintf(why, wl, "query: %s", mmo_errdesc(err));
		return -1;
	}
	while ((err = evlog_query_next(it, &rec)) == MMO_OK) {
		sum += rec.raw[rec.raw_len - 1];
		n++;
	}
	st->driver = evlog_query_driver(it, &st->candidates);
	st->scanned = evlog_query_scanned(it);
	evlog_query_close(it);
	*us = (double)(mmo_mono_us() - t0);
	sink += sum;
	st->matched = n;
	if (err != MMO_ENOTFOUND) {
		snprintf(why, wl, "query: %s", mmo_errdesc(err));
		return -1;
	}
	return 0;
}

/* Depth of the events B-tree of the log in dir (0 if unknown): a lookup by
 * seq descends this many pages. */
static unsigned events_depth(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st = {0};

	if (mdb_env_create(&env))
		return 0;
	mdb_env_set_maxdbs(env, 16);
	if (!mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0640) &&
	    !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
		if (!mdb_dbi_open(txn, "events", 0, &dbi))
			mdb_stat(txn, dbi, &st);
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return st.ms_depth;
}

/* ------------------------------------------------------------ the command */

static void help(FILE *f)
{
	fprintf(
	    f,
	    "usage: mmo bench audit [options]\n"
	    "The auditors' costs against their limits, in one run, on two generated logs\n"
	    "(1 M and 10 M events; generation and indexing are not measured):\n"
	    "  verify  evlog_verify (chain, decoding, ids and index entries, as `mmo audit\n"
	    "          verify`) on the 1 M log, against the hashing limit: OpenSSL SHA-256\n"
	    "          of the bytes the chain hashes, per record, over the same records read\n"
	    "          from the map in a tight loop\n"
	    "  query   the events of one player who has the same events in both logs,\n"
	    "          with evlog_query: its time on the 1 M and on the 10 M log\n"
	    "  --small            logs of 100 k and 1 M events (a quick run; said in the output)\n"
	    "  --runs R           verify runs; each is printed, then the medians (default 3)\n"
	    "  --repeat Q         timed queries per log, alternating, after one warm-up\n"
	    "                     each (default 9)\n"
	    "  --players P        other players (default 10000)\n"
	    "  --player-events K  the target player's events in each log (default 1%% of the\n"
	    "                     small log: 10000, or 1000 with --small, so that they are\n"
	    "                     on separate pages in both logs)\n"
	    "  --data DIR         where the temporary folder goes (default $TMPDIR or /tmp);\n"
	    "                     it is removed at the end. The two logs take about %d bytes\n"
	    "                     per event; a run refuses to start without that room\n"
	    "Every option may also come from MMO_<OPTION>, e.g. MMO_RUNS.\n"
	    "The last two lines of the output are:\n"
	    "  audit verify_per_s=N hash_limit_per_s=N ratio=R\n"
	    "  audit query_1m_us=N query_10m_us=N ratio=R   (--small: query_100k_us, "
	    "query_1m_us)\n"
	    "Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	    BYTES_PER_EV);
}

static int parse_config(int argc, char **argv, struct config *cfg)
{
	static const struct option lo[] = {{"small", no_argument, 0, 's'},
	                                   {"runs", required_argument, 0, 'r'},
	                                   {"repeat", required_argument, 0, 'q'},
	                                   {"players", required_argument, 0, 'P'},
	                                   {"player-events", required_argument, 0, 'k'},
	                                   {"data", required_argument, 0, 'd'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_r = NULL, *a_q = NULL, *a_P = NULL, *a_k = NULL, *a_d = NULL, *s;
	uint64_t v;
	int c;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': cfg->small = true; break;
		case 'r': a_r = optarg; break;
		case 'q': a_q = optarg; break;
		case 'P': a_P = optarg; break;
		case 'k': a_k = optarg; break;
		case 'd': a_d = optarg; break;
		case 'h': help(stdout); return -1;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err(CMD, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	s = cli_opt("small", NULL, NULL);
	if (s && strcmp(s, "0"))
		cfg->small = true;
	cfg->n[0] = cfg->small ? 100000 : 1000000;
	cfg->n[1] = cfg->small ? 1000000 : 10000000;
	cfg->name[0] = cfg->small ? "100k" : "1m";
	cfg->name[1] = cfg->small ? "1m" : "10m";
	if (!bench_parse_num(CMD, "runs", cli_opt("runs", a_r, "3"), 1, RUNS_MAX, &v))
		return EXIT_USAGE;
	cfg->runs = (unsigned)v;
	if (!bench_parse_num(CMD, "repeat", cli_opt("repeat", a_q, "9"), 1, REPEAT_MAX, &v))
		return EXIT_USAGE;
	cfg->repeat = (unsigned)v;
	if (!bench_parse_num(CMD, "players", cli_opt("players", a_P, "10000"), 1, 999999, &v))
		return EXIT_USAGE;
	cfg->players = (unsigned)v;
	if (!bench_parse_num(CMD, "player-events",
	               cli_opt("player-events", a_k, cfg->small ? "1000" : "10000"), 1,
	               cfg->n[0] / 2, &cfg->player_events))
		return EXIT_USAGE;
	cfg->data = cli_opt("data", a_d, NULL);
	return EXIT_OK;
}

static int open_ro(const char *dir, evlog **out, char *why, size_t wl)
{
	struct evlog_opts lo = {.dir = dir, .readonly = true};
	char msg[512];

	if (evlog_open(&lo, out, msg, sizeof(msg))) {
		snprintf(why, wl, "%s", msg);
		return -1;
	}
	return 0;
}

int bench_audit(int argc, char **argv)
{
	struct config cfg = {0};
	struct sigaction sa = {0}, old_int, old_term;
	double v_rate[RUNS_MAX], n_rate[RUNS_MAX], h_rate[RUNS_MAX], s_rate[RUNS_MAX];
	double *q_us[2] = {NULL, NULL}, m_v, m_h, ratio, m_q[2], q_ratio;
	char root[4096] = "", dir[2][4200], why[768] = "";
	struct qstat qs[2];
	struct statvfs sv;
	evlog *l[2] = {NULL, NULL};
	const char *base;
	uint64_t need, have;
	int rc;

	rc = parse_config(argc, argv, &cfg);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	q_us[0] = calloc(cfg.repeat, sizeof(double));
	q_us[1] = calloc(cfg.repeat, sizeof(double));
	if (!q_us[0] || !q_us[1]) {
		free(q_us[0]);
		free(q_us[1]);
		cli_err(CMD, "out of memory");
		return EXIT_FAIL;
	}

	base = cfg.data ? cfg.data
	                : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	need = (cfg.n[0] + cfg.n[1]) * BYTES_PER_EV;
	if (statvfs(base, &sv) == 0 && (have = (uint64_t)sv.f_bavail * sv.f_frsize) < need) {
		cli_err(CMD, "%s has %.1f GB free, the two logs need about %.1f GB%s", base,
		        (double)have / 1e9, (double)need / 1e9,
		        cfg.small ? "" : " (--small needs a tenth)");
		free(q_us[0]);
		free(q_us[1]);
		return EXIT_FAIL;
	}
	snprintf(root, sizeof(root), "%s/mmo-bench.XXXXXX", base);
	if (!mkdtemp(root)) {
		cli_err(CMD, "cannot create a folder in %s: %s", base, strerror(errno));
		free(q_us[0]);
		free(q_us[1]);
		return EXIT_FAIL;
	}
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	printf("bench audit: logs=%s,%s%s player=%s player_events=%llu players=%u runs=%u "
	       "repeat=%u cpus=%ld data=%s\n",
	       cfg.name[0], cfg.name[1], cfg.small ? " (--small: a quick run)" : "", TARGET,
	       (unsigned long long)cfg.player_events, cfg.players, cfg.runs, cfg.repeat,
	       sysconf(_SC_NPROCESSORS_ONLN), root);
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		snprintf(dir[i], sizeof(dir[i]), "%s/log-%s", root, cfg.name[i]);
		if (gen_log(&cfg, i, dir[i], why, sizeof(why)))
			goto fail;
	}
	if (open_ro(dir[0], &l[0], why, sizeof(why)) || open_ro(dir[1], &l[1], why, sizeof(why)))
		goto fail;

	/* Verify against the hashing limit, on the small log. */
	for (unsigned r = 0; r < cfg.runs; r++) {
		struct hash_result H = {0};

		if (hash_limit(dir[0], r + 1, cfg.n[0], &H, why, sizeof(why)) ||
		    verify_rate(l[0], r + 1, true, &v_rate[r], why, sizeof(why)) ||
		    verify_rate(l[0], r + 1, false, &n_rate[r], why, sizeof(why)))
			goto fail;
		h_rate[r] = H.limit_per_s;
		s_rate[r] = H.stream_per_s;
		printf("run %u verify: log=%s events=%llu verify_per_s=%.0f "
		       "verify_no_indexes_per_s=%.0f hash_limit_per_s=%.0f stream_hash_per_s=%.0f "
		       "ratio=%.2f\n",
		       r + 1, cfg.name[0], (unsigned long long)H.records, v_rate[r], n_rate[r],
		       h_rate[r], s_rate[r], h_rate[r] > 0 ? v_rate[r] / h_rate[r] : 0);
		fflush(stdout);
	}

	/* One player's query on both logs: a warm-up each, then alternating. */
	for (int i = 0; i < 2; i++) {
		double us;

		if (query_once(l[i], &qs[i], &us, why, sizeof(why)))
			goto fail;
		if (qs[i].matched != cfg.player_events || qs[i].driver != EVLOG_DRIVE_PLAYER) {
			snprintf(why, sizeof(why),
			         "the query on the %s log found %llu events of %s (driver %d), "
			         "%llu expected from the player index",
			         cfg.name[i], (unsigned long long)qs[i].matched, TARGET,
			         (int)qs[i].driver, (unsigned long long)cfg.player_events);
			goto fail;
		}
	}
	for (unsigned q = 0; q < cfg.repeat; q++) {
		for (int i = 0; i < 2; i++) {
			if (query_once(l[i], &qs[i], &q_us[i][q], why, sizeof(why)))
				goto fail;
		}
		if (interrupted) {
			snprintf(why, sizeof(why), "interrupted");
			goto fail;
		}
	}
	for (int i = 0; i < 2; i++) {
		m_q[i] = bench_median(q_us[i], cfg.repeat); /* sorts: [0] is the min */
		printf("query %s: events=%llu player=%s matched=%llu scanned=%llu driver=player "
		       "median_us=%.0f min_us=%.0f max_us=%.0f ns_per_event=%.0f "
		       "events_btree_depth=%u\n",
		       cfg.name[i], (unsigned long long)cfg.n[i], TARGET,
		       (unsigned long long)qs[i].matched, (unsigned long long)qs[i].scanned, m_q[i],
		       q_us[i][0], q_us[i][cfg.repeat - 1],
		       qs[i].matched ? m_q[i] * 1000 / (double)qs[i].matched : 0,
		       events_depth(dir[i]));
	}

	m_v = bench_median(v_rate, cfg.runs);
	m_h = bench_median(h_rate, cfg.runs);
	ratio = m_h > 0 ? m_v / m_h : 0;
	q_ratio = m_q[0] > 0 ? m_q[1] / m_q[0] : 0;
	printf("median verify: verify_per_s=%.0f verify_no_indexes_per_s=%.0f "
	       "hash_limit_per_s=%.0f stream_hash_per_s=%.0f\n",
	       m_v, bench_median(n_rate, cfg.runs), m_h, bench_median(s_rate, cfg.runs));
	printf("target: ratio >= 0.5: %s\n", ratio >= 0.5 ? "met" : "MISSED");
	printf("target: query ratio near 1 (taken as <= 1.5; the logs differ 10x): %s\n",
	       q_ratio <= 1.5 ? "met" : "MISSED");
	if (cfg.small)
		printf("note: --small: the logs have 100k and 1M events, not 1M and 10M\n");
	printf("audit verify_per_s=%.0f hash_limit_per_s=%.0f ratio=%.2f\n", m_v, m_h, ratio);
	printf("audit query_%s_us=%.0f query_%s_us=%.0f ratio=%.2f\n", cfg.name[0], m_q[0],
	       cfg.name[1], m_q[1], q_ratio);
	fflush(stdout);
	rc = EXIT_OK;
	goto out;

fail:
	cli_err(CMD, "%s", interrupted ? "interrupted" : why);
	rc = EXIT_FAIL;
out:
	evlog_close(l[0]);
	evlog_close(l[1]);
	bench_rm_tree(root);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free(q_us[0]);
	free(q_us[1]);
	return rc;
}
