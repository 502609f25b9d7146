/* replay.c - `mmo replay`: rebuild the world at any seq, a player's
 * timeline, verify the rules against the log, bisect an invariant. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "replay/replay.h"
#include "projector/world/world.h"

static void help(FILE *f)
{
	fprintf(
	    f,
	    "usage: mmo replay [--data DIR] [options]\n"
	    "Rebuild the world's state from the log (read-only; a copy is fine).\n"
	    "  --data DIR          data folder (default ./data): the log in DIR/log, the\n"
	    "                      world's snapshots in DIR/world (a log folder works too)\n"
	    "  --to SEQ            stop after SEQ (default: the log's head)\n"
	    "  --dump FILE         write the state as canonical JSON (sorted keys, one\n"
	    "                      player per line) to FILE, '-' for stdout\n"
	    "  --player ID         print ID's timeline on stdout: one JSON line per event that\n"
	    "                      touched them, with their outcomes and the player after it\n"
	    "  --verify            re-run the rules on every intent and compare with the\n"
	    "                      outcomes in the log; check every snapshot's state hash\n"
	    "  --bisect --invariant NAME\n"
	    "                      the first seq at which NAME fails: hp_range, in_bounds,\n"
	    "                      region_match, dead_action, or all\n"
	    "  --from-snapshot     start from the newest valid snapshot <= --to (faster)\n"
	    "  --seed N            world seed (default: the one in DIR/world, else %d)\n"
	    "  --quiet             no progress on stderr\n"
	    "Prints a summary line with the state hash on stdout.\n"
	    "Exit status: 0 done (verify: no divergence; bisect: the invariant holds),\n"
	    "1 divergence, violation or unreadable log, 2 bad usage.\n",
	    WORLD_DEFAULT_SEED);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_log(const char *dir)
{
	char p[4300];
	struct stat st;

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	return stat(p, &st) == 0;
}

static void progress(uint64_t done, uint64_t total, double rate, void *arg)
{
	double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;

	(void)arg;
	fprintf(stderr, "replay: %llu/%llu records (%.1f%%), %.0f events/s, ETA %.0f s\n",
	        (unsigned long long)done, (unsigned long long)total,
	        total ? 100.0 * (double)done / (double)total : 100.0, rate, eta);
}

static int dump(const world *w, const char *path)
{
	char *buf = NULL;
	size_t len;
	FILE *f;
	int rc = EXIT_OK;

	if (world_encode(w, &buf, &len)) {
		cli_err("replay", "out of memory encoding the state");
		return EXIT_FAIL;
	}
	f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	if (!f) {
		cli_err("replay", "cannot write %s: %s", path, strerror(errno));
		free(buf);
		return EXIT_FAIL;
	}
	if (fwrite(buf, 1, len, f) != len || fflush(f) != 0) {
		cli_err("replay", "writing %s failed", path);
		rc = EXIT_FAIL;
	}
	if (f != stdout && fclose(f) != 0)
		rc = EXIT_FAIL;
	free(buf);
	return rc;
}

static void summary(const char *what, const world *w, const struct replay_result *res)
{
	uint8_t h[WORLD_HASH_LEN];
	char hex[2 * WORLD_HASH_LEN + 1] = "?";

	if (w && !world_hash(w, h))
		world_hash_hex(h, hex);
	printf("%s: seq=%llu head=%llu players=%zu entities=%zu hash=%s records=%llu "
	       "seconds=%.3f events_per_s=%.0f\n",
	       what, (unsigned long long)res->seq, (unsigned long long)res->head,
	       w ? world_player_count(w) : 0, w ? world_entity_count(w) : 0, hex,
	       (unsigned long long)res->records, res->seconds,
	       res->seconds > 0 ? (double)res->records / res->seconds : 0.0);
}

int cmd_replay(int argc, char **argv)
{
	static const struct option lo[] = {{"data", required_argument, 0, 'd'},
	                                   {"to", required_argument, 0, 't'},
	                                   {"dump", required_argument, 0, 'D'},
	                                   {"player", required_argument, 0, 'p'},
	                                   {"verify", no_argument, 0, 'v'},
	                                   {"bisect", no_argument, 0, 'b'},
	                                   {"invariant", required_argument, 0, 'i'},
	                                   {"from-snapshot", no_argument, 0, 'f'},
	                                   {"seed", required_argument, 0, 's'},
	                                   {"quiet", no_argument, 0, 'q'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_data = NULL, *a_to = NULL, *a_seed = NULL, *dump_path = NULL, *player = NULL,
	           *inv = NULL, *data;
	bool verify = false, bisect = false, from_snap = false, quiet = false;
	struct evlog_opts lopts = {0};
	struct replay_opts ro = {0};
	struct replay_result res;
	world_snapdb *snaps = NULL;
	evlog *log = NULL;
	world *w = NULL;
	char logdir[4200], worlddir[4200], msg[512];
	uint64_t to = 0, seed = 0, stored;
	int c, err, rc = EXIT_FAIL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 't': a_to = optarg; break;
		case 'D': dump_path = optarg; break;
		case 'p': player = optarg; break;
		case 'v': verify = true; break;
		case 'b': bisect = true; break;
		case 'i': inv = optarg; break;
		case 'f': from_snap = true; break;
		case 's': a_seed = optarg; break;
		case 'q': quiet = true; break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("replay", "unexpected argument '%s' (see mmo replay --help)", argv[optind]);
		return EXIT_USAGE;
	}
	data = cli_opt("data", a_data, "./data");
	if (a_to && (!cli_parse_u64(a_to, &to) || to == 0)) {
		cli_err("replay", "--to takes a seq >= 1, not '%s'", a_to);
		return EXIT_USAGE;
	}
	a_seed = cli_opt("seed", a_seed, NULL);
	if (a_seed && (!cli_parse_u64(a_seed, &seed) || seed == 0)) {
		cli_err("replay", "--seed takes an integer >= 1, not '%s'", a_seed);
		return EXIT_USAGE;
	}
	if ((int)verify + (int)bisect + (player != NULL) > 1) {
		cli_err("replay", "--verify, --bisect and --player go one at a time");
		return EXIT_USAGE;
	}
	if (bisect != (inv != NULL)) {
		cli_err("replay",
		        "--bisect needs --invariant NAME, and --invariant needs --bisect");
		return EXIT_USAGE;
	}
	if (inv && !world_invariant_known(inv)) {
		cli_err("replay",
		        "unknown invariant '%s' (hp_range, in_bounds, region_match, "
		        "dead_action, all)",
		        inv);
		return EXIT_USAGE;
	}
	if (player && !mmo_id_valid(player)) {
		cli_err("replay", "--player: '%s' is not a player id", player);
		return EXIT_USAGE;
	}
	if (dump_path && (bisect || player)) {
		cli_err("replay", "--dump goes with a plain replay or --verify");
		return EXIT_USAGE;
	}

	/* DIR/log and DIR/world, or DIR is the log itself. */
	snprintf(logdir, sizeof(logdir), "%s/log", data);
	snprintf(worlddir, sizeof(worlddir), "%s/world", data);
	if (!has_log(logdir)) {
		if (!has_log(data)) {
			cli_err("replay", "no log in %s (expected %s/log/data.mdb)", data, data);
			return EXIT_FAIL;
		}
		snprintf(logdir, sizeof(logdir), "%s", data);
		worlddir[0] = 0;
	}
	lopts.dir = logdir;
	lopts.readonly = true;
	err = evlog_open(&lopts, &log, msg, sizeof(msg));
	if (err) {
		cli_err("replay", "%s", msg);
		return EXIT_FAIL;
	}
	if (worlddir[0] && is_dir(worlddir)) {
		err = world_snapdb_open(worlddir, true, &snaps, msg, sizeof(msg));
		if (err) {
			mmo_logf(MMO_LOG_WARN, "replay", "%s: replaying without snapshots", msg);
			snaps = NULL;
		}
	}
	if (snaps && world_snapdb_seed(snaps, &stored) == MMO_OK) {
		if (seed && seed != stored)
			mmo_logf(MMO_LOG_WARN, "replay",
			         "--seed %llu differs from the world's stored seed %llu",
			         (unsigned long long)seed, (unsigned long long)stored);
		if (!seed)
			seed = stored;
	}
	ro.log = log;
	ro.snaps = snaps;
	ro.seed = seed ? seed : WORLD_DEFAULT_SEED;
	ro.to_seq = to;
	ro.from_snapshot = from_snap;
	ro.verify = verify;
	ro.player = player;
	ro.timeline = player ? stdout : NULL;
	ro.progress = quiet ? NULL : progress;

	if (bisect) {
		err = replay_bisect(&ro, inv, &res);
		if (err) {
			cli_err("replay", "bisect failed: %s%s%s", mmo_errdesc(err),
			        res.what[0] ? ": " : "", res.what);
			goto out;
		}
		if (res.pending_seq)
			mmo_logf(
			    MMO_LOG_WARN, "replay",
			    "stopped before seq %llu: that intent has no outcome in the log yet",
			    (unsigned long long)res.pending_seq);
		if (res.bad_seq) {
			printf("bisect: %s first fails at seq %llu: %s\n", inv,
			       (unsigned long long)res.bad_seq, res.what);
			goto out;
		}
		printf(
		    "bisect: %s holds up to seq %llu (started at seq %llu, %llu records, %.3f s)\n",
		    inv, (unsigned long long)res.seq, (unsigned long long)res.start_seq,
		    (unsigned long long)res.records, res.seconds);
		rc = EXIT_OK;
		goto out;
	}

	err = replay_run(&ro, &w, &res);
	if (err) {
		cli_err("replay", "%s%s%s", mmo_errdesc(err), res.what[0] ? ": " : "", res.what);
		goto out;
	}
	if (res.pending_seq)
		mmo_logf(
		    MMO_LOG_WARN, "replay",
		    "stopped at seq %llu: the intent at seq %llu has no outcome in the log yet "
		    "(the world has not answered it)",
		    (unsigned long long)res.seq, (unsigned long long)res.pending_seq);
	if (verify && res.diverged) {
		cli_err("replay", "divergence: %s", res.what);
		summary("verify", w, &res);
		goto out;
	}
	if (dump_path && dump(w, dump_path) != EXIT_OK)
		goto out;
	if (verify)
		printf("verify: ok: %llu intents re-decided, %llu snapshots checked\n",
		       (unsigned long long)res.intents, (unsigned long long)res.snapshots_checked);
	if (!player && !(dump_path && !strcmp(dump_path, "-")))
		summary(verify ? "verify" : "replay", w, &res);
	rc = EXIT_OK;
out:
	world_free(w);
	world_snapdb_close(snaps);
	evlog_close(log);
	return rc;
}
