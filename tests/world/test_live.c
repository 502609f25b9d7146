/* test_live.c - the live world (world_runner) in one process with the log
 * server: a generated game goes in through the ingest, the runner answers
 * every intent, the state equals the replay of the log, restarts (from a
 * snapshot, from nothing, without a local log) neither lose nor double an
 * outcome. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <cmocka.h>

#include "log_check.h"
#include "schemas/mmo_util.h"
#include "replay/replay.h"
#include "testsupport.h"
#include "world_test.h"

#define NPLAYERS 500
#define NACTIONS 8000

struct live {
	char dir[256], logdir[300], ingest[64], bus[64];
	void *zctx;
	evlog *log;
	evlog_server *srv;
	world_runner *run;
	evlog_client *cli;
	uint64_t rng, eid;
};

static int seq_no;

static void start_runner(struct live *l, bool with_log, uint64_t every)
{
	struct world_runner_opts o = {0};
	char msg[256];

	o.log = with_log ? l->log : NULL;
	o.zctx = l->zctx;
	o.ingest = l->ingest;
	o.bus = l->bus;
	o.data_dir = l->dir;
	o.snapshot_every = every;
	if (world_runner_start(&o, &l->run, msg, sizeof(msg)))
		fail_msg("world_runner_start: %s", msg);
}

static struct live *live_new(void)
{
	struct live *l = calloc(1, sizeof(*l));
	struct evlog_opts lo = {0};
	struct evlog_server_opts so = {0};
	char msg[256];

	assert_non_null(l);
	assert_int_equal(ts_tmpdir(l->dir, sizeof(l->dir)), 0);
	snprintf(l->logdir, sizeof(l->logdir), "%s/log", l->dir);
	seq_no++;
	snprintf(l->ingest, sizeof(l->ingest), "inproc://wt-ingest-%d", seq_no);
	snprintf(l->bus, sizeof(l->bus), "inproc://wt-bus-%d", seq_no);
	lo.dir = l->logdir;
	lo.nosync = true;
	lo.map_size = (size_t)1 << 30;
	assert_int_equal(evlog_open(&lo, &l->log, msg, sizeof(msg)), MMO_OK);
	l->zctx = zmq_ctx_new();
	so.log = l->log;
	so.zctx = l->zctx;
	so.ingest = l->ingest;
	so.bus = l->bus;
	if (evlog_server_start(&so, &l->srv, msg, sizeof(msg)))
		fail_msg("evlog_server_start: %s", msg);
	assert_int_equal(evlog_client_open(l->zctx, l->ingest, 10000, &l->cli), MMO_OK);
	l->rng = 99;
	return l;
}

static void live_free(struct live *l)
{
	world_runner_stop(l->run);
	evlog_client_close(l->cli);
	evlog_server_stop(l->srv);
	zmq_ctx_term(l->zctx);
	evlog_close(l->log);
	ts_rmrf(l->dir);
	free(l);
}

static unsigned rnd(struct live *l)
{
	l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(l->rng >> 33);
}

/* Send n events built by fn, in requests of up to 100. */
static void send_all(struct live *l, unsigned n,
                     void (*fn)(struct live *, unsigned, struct mmo_ev *, char *, char *))
{
	static uint8_t buf[100][1024];
	struct evlog_in in[100];
	uint64_t seqs[100];
	int errs[100];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct mmo_ev b;
		char pid[16], eid[32], aux[16];
		size_t len;

		snprintf(eid, sizeof(eid), "c:%llu", (unsigned long long)++l->eid);
		fn(l, i, &b, pid, aux);
		b.ev.event_id = eid;
		assert_int_equal(mmo_event_encode(&b.ev, buf[k], sizeof(buf[k]), &len), MMO_OK);
		in[k].buf = buf[k];
		in[k].len = len;
		in[k].priority = mmo_event_priority(&b.ev);
		if (++k == 100 || i + 1 == n) {
			assert_int_equal(evlog_client_append(l->cli, in, k, seqs, errs), MMO_OK);
			for (unsigned j = 0; j < k; j++)
				assert_int_equal(errs[j], MMO_OK);
			k = 0;
		}
	}
}

static void mk_register(struct live *l, unsigned i, struct mmo_ev *b, char *pid, char *aux)
{
	(void)l;
	snprintf(pid, 16, "p%u", i);
	snprintf(aux, 16, "user%u", i);
	mmo_ev_init(b, "player.register", "x", pid, NULL);
	b->body.player_register.username = aux;
}

static void mk_login(struct live *l, unsigned i, struct mmo_ev *b, char *pid, char *aux)
{
	(void)l;
	(void)aux;
	snprintf(pid, 16, "p%u", i);
	mmo_ev_init(b, "player.login", "x", pid, NULL);
}

static void mk_action(struct live *l, unsigned i, struct mmo_ev *b, char *pid, char *aux)
{
	static const char *skills[] = {"punch", "slash", "fireball"};
	unsigned r = rnd(l), p = (r >> 4) % NPLAYERS;

	(void)i;
	snprintf(pid, 16, "p%u", p);
	switch (r % 8) {
	case 0:
		mmo_ev_init(b, (r >> 20) % 4 ? "player.login" : "player.logout", "x", pid, NULL);
		break;
	case 1:
	case 2:
	case 3:
		/* Small steps around the spawn point: mostly allowed. */
		mmo_ev_init(b, "player.move", "x", pid, NULL);
		mmo_ev_set_pos(b, 5000 + (double)(rnd(l) % 5), 5000 + (double)(rnd(l) % 5), 0);
		break;
	default:
		mmo_ev_init(b, "combat.attack", "x", pid, NULL);
		snprintf(aux, 16, "p%u", (p + 1 + rnd(l) % 3) % NPLAYERS);
		b->body.combat_attack.defender_id = aux;
		b->body.combat_attack.skill_id = (char *)skills[(r >> 24) % 3];
		break;
	}
}

static uint64_t head_of(struct live *l)
{
	uint64_t h = 0;

	evlog_head(l->log, &h, NULL);
	return h;
}

/* Wait until the runner has folded the whole log and the log is still. */
static void wait_caught_up(struct live *l, struct world_runner_status *st)
{
	int64_t deadline = mmo_mono_us() + 60 * 1000000LL;
	int still = 0;

	while (mmo_mono_us() < deadline) {
		uint64_t h = head_of(l);

		world_runner_status(l->run, false, st);
		if (st->seq == h && h > 0) {
			if (++still >= 5)
				break;
		} else {
			still = 0;
		}
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	}
	world_runner_status(l->run, true, st);
	assert_int_equal(st->seq, head_of(l));
}

static void assert_same_as_replay(struct live *l, const struct world_runner_status *st)
{
	struct replay_opts o = {0};
	struct replay_result res;
	struct outcome_census c;
	world *w = NULL;
	uint8_t h[32];
	char why[256];

	o.log = l->log;
	o.seed = WORLD_DEFAULT_SEED;
	o.to_seq = st->seq;
	assert_int_equal(replay_run(&o, &w, &res), MMO_OK);
	assert_int_equal(res.seq, st->seq);
	assert_int_equal(res.pending_seq, 0);
	assert_int_equal(world_hash(w, h), MMO_OK);
	assert_memory_equal(h, st->hash, 32);
	world_free(w);
	if (check_outcomes(l->log, &c, why, sizeof(why)))
		fail_msg("%s", why);
	assert_int_equal(c.answered, c.intents);
}

static void the_runner_answers_every_intent_like_the_replay(void **state)
{
	struct live *l = live_new();
	struct world_runner_status st;
	struct replay_opts o = {0};
	struct replay_result res;

	(void)state;
	start_runner(l, true, 1000);
	send_all(l, NPLAYERS, mk_register);
	send_all(l, NPLAYERS, mk_login);
	send_all(l, NACTIONS, mk_action);
	wait_caught_up(l, &st);
	print_message("runner: seq %llu, %llu intents decided, %llu snapshots, %llu errors\n",
	              (unsigned long long)st.seq, (unsigned long long)st.intents,
	              (unsigned long long)st.snapshots, (unsigned long long)st.errors);
	assert_int_equal(st.intents, NPLAYERS + NACTIONS);
	assert_int_equal(st.conflicts, 0);
	assert_true(st.snapshots >= 5);
	assert_same_as_replay(l, &st);

	/* --verify agrees, including the runner's snapshots. */
	char msg[256], wdir[300];
	snprintf(wdir, sizeof(wdir), "%s/world", l->dir);
	o.log = l->log;
	o.seed = WORLD_DEFAULT_SEED;
	o.verify = true;
	world_runner_stop(l->run);
	l->run = NULL;
	assert_int_equal(world_snapdb_open(wdir, true, &o.snaps, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	if (res.diverged)
		fail_msg("%s", res.what);
	assert_true(res.snapshots_checked >= 5);
	world_snapdb_close(o.snaps);
	live_free(l);
}

static void a_restart_continues_from_the_snapshot(void **state)
{
	struct live *l = live_new();
	struct world_runner_status st, st2;
	uint64_t head;

	(void)state;
	start_runner(l, true, 700);
	send_all(l, NPLAYERS, mk_register);
	send_all(l, NPLAYERS, mk_login);
	send_all(l, NACTIONS / 2, mk_action);
	wait_caught_up(l, &st);
	world_runner_stop(l->run);
	head = head_of(l);

	/* From the last snapshot (written at stop): nothing to do. */
	start_runner(l, true, 700);
	wait_caught_up(l, &st2);
	assert_memory_equal(st.hash, st2.hash, 32);
	assert_int_equal(st2.intents, 0);
	assert_int_equal(head_of(l), head);

	/* And on with the game. */
	send_all(l, NACTIONS / 2, mk_action);
	wait_caught_up(l, &st);
	assert_same_as_replay(l, &st);
	live_free(l);
}

static void a_world_without_snapshots_finds_its_outcomes_in_the_log(void **state)
{
	struct live *l = live_new();
	struct world_runner_status st, st2;
	char wdir[300];
	uint64_t head;

	(void)state;
	start_runner(l, true, 1000000);
	send_all(l, NPLAYERS, mk_register);
	send_all(l, NPLAYERS, mk_login);
	send_all(l, NACTIONS / 2, mk_action);
	wait_caught_up(l, &st);
	world_runner_stop(l->run);
	head = head_of(l);
	snprintf(wdir, sizeof(wdir), "%s/world", l->dir);

	/* Lost its snapshots: it folds everything again, reading the answers
	 * back from the log instead of deciding (and appending) again. */
	ts_rmrf(wdir);
	start_runner(l, true, 1000000);
	wait_caught_up(l, &st2);
	assert_memory_equal(st.hash, st2.hash, 32);
	assert_int_equal(st2.intents, 0);
	assert_int_equal(st2.reused, NPLAYERS + NACTIONS / 2);
	assert_int_equal(head_of(l), head);
	world_runner_stop(l->run);

	/* A remote world (no local log) decides everything again: the log's
	 * idempotency turns every outcome into a duplicate, none is added. */
	ts_rmrf(wdir);
	start_runner(l, false, 1000000);
	wait_caught_up(l, &st2);
	assert_memory_equal(st.hash, st2.hash, 32);
	assert_int_equal(st2.intents, NPLAYERS + NACTIONS / 2);
	assert_int_equal(st2.conflicts, 0);
	assert_int_equal(head_of(l), head);
	assert_same_as_replay(l, &st2);
	live_free(l);
}

/* The log already holds a (forged) answer to an intent when the world
 * first sees it. */
static void a_conflicting_outcome_in_the_log_wins(void **state)
{
	struct live *l = live_new();
	struct world_runner_status st;
	struct mmo_ev b;
	uint8_t buf[512];
	struct evlog_in in;
	uint64_t seq, login_seq;
	int err;
	size_t len;
	char wdir[300], id[32];

	(void)state;
	send_all(l, 3, mk_register);
	send_all(l, 3, mk_login);
	login_seq = head_of(l) - 1; /* p1's login */
	snprintf(id, sizeof(id), "w:%llu:0", (unsigned long long)login_seq);
	mmo_ev_init(&b, "world.reject", id, "p1", NULL);
	b.ev.cause_seq = login_seq;
	b.body.world_reject.reason = "banned";
	b.body.world_reject.detail = "by an operator";
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_OK);
	in.buf = buf;
	in.len = len;
	in.priority = MMO_PRIO_HIGH;
	assert_int_equal(evlog_client_append(l->cli, &in, 1, &seq, &err), MMO_OK);
	assert_int_equal(err, MMO_OK);

	/* Remote: it cannot read the log's answer back, so it counts the
	 * conflict and goes on (no rebuild loop). */
	start_runner(l, false, 0);
	wait_caught_up(l, &st);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.rebuilds, 0);
	assert_int_equal(st.intents, 3);
	world_runner_stop(l->run);

	/* Local: the log's answer is found and adopted: p1 stays offline. */
	snprintf(wdir, sizeof(wdir), "%s/world", l->dir);
	ts_rmrf(wdir);
	start_runner(l, true, 0);
	wait_caught_up(l, &st);
	assert_int_equal(st.conflicts, 0);
	assert_int_equal(st.reused, 3);
	assert_same_as_replay(l, &st);
	live_free(l);
}

static void a_changed_seed_is_refused(void **state)
{
	struct live *l = live_new();
	struct world_runner_opts o = {0};
	world_runner *r = NULL;
	char msg[256];

	(void)state;
	start_runner(l, true, 0);
	world_runner_stop(l->run);
	l->run = NULL;
	o.log = l->log;
	o.zctx = l->zctx;
	o.ingest = l->ingest;
	o.bus = l->bus;
	o.data_dir = l->dir;
	o.seed = 12345;
	assert_int_equal(world_runner_start(&o, &r, msg, sizeof(msg)), MMO_EINVAL);
	assert_non_null(strstr(msg, "differs"));
	live_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_runner_answers_every_intent_like_the_replay),
	    cmocka_unit_test(a_restart_continues_from_the_snapshot),
	    cmocka_unit_test(a_world_without_snapshots_finds_its_outcomes_in_the_log),
	    cmocka_unit_test(a_conflicting_outcome_in_the_log_wins),
	    cmocka_unit_test(a_changed_seed_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
