/* test_crash.c - kill -9 the process running the world (and the log) in the
 * middle of a load, restart it, several times: afterwards every intent has
 * its outcomes exactly once (none doubled, none missing) and the world's
 * state equals the replay of its log. Then `mmo replay` on the same data:
 * --verify, --to/--dump, --player, --bisect, and bad usage. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "log_check.h"
#include "schemas/mmo_util.h"
#include "replay/replay.h"
#include "testsupport.h"
#include "world_test.h"

#define NPLAYERS 300
#define REQ      50

struct node {
	char dir[256], data[300], logfile[300], ingest[64], bus[64];
	pid_t pid;
};

static const char *node_bin(void)
{
	static char path[4200];
	const char *mmo = ts_mmo_bin();

	/* world_node is built next to mmo. */
	snprintf(path, sizeof(path), "%.*s/world_node", (int)(strrchr(mmo, '/') - mmo), mmo);
	return path;
}

static void node_start(struct node *n)
{
	char *argv[] = {(char *)node_bin(), n->data, n->ingest, n->bus, "300", NULL};
	char ready[64];
	FILE *f;
	long before;

	/* Wait for a new "ready" line, after those of earlier runs. */
	f = fopen(n->logfile, "a");
	fprintf(f, "--- start\n");
	before = ftell(f);
	fclose(f);
	n->pid = ts_spawn(argv, n->logfile);
	assert_true(n->pid > 0);
	snprintf(ready, sizeof(ready), "world_node: ready");
	for (int i = 0; i < 200; i++) {
		char *buf = NULL;
		size_t cap = 0;
		ssize_t len;
		bool found = false;

		f = fopen(n->logfile, "r");
		fseek(f, before, SEEK_SET);
		while ((len = getline(&buf, &cap, f)) > 0)
			found |= strstr(buf, ready) != NULL;
		free(buf);
		fclose(f);
		if (found)
			return;
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	}
	fail_msg("world_node did not start (see %s)", n->logfile);
}

static void build(struct mmo_ev *b, uint64_t i, uint64_t *rng, char *pid, char *aux)
{
	static const char *skills[] = {"punch", "slash", "fireball"};
	unsigned r, p;

	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	r = (unsigned)(*rng >> 33);
	p = (r >> 4) % NPLAYERS;
	if (i < NPLAYERS) {
		snprintf(pid, 16, "p%u", (unsigned)i);
		snprintf(aux, 16, "user%u", (unsigned)i);
		mmo_ev_init(b, "player.register", "x", pid, NULL);
		b->body.player_register.username = aux;
		return;
	}
	if (i < 2 * NPLAYERS) {
		snprintf(pid, 16, "p%u", (unsigned)(i - NPLAYERS));
		mmo_ev_init(b, "player.login", "x", pid, NULL);
		return;
	}
	snprintf(pid, 16, "p%u", p);
	switch (r % 8) {
	case 0:
		mmo_ev_init(b, (r >> 20) % 4 ? "player.login" : "player.logout", "x", pid, NULL);
		break;
	case 1:
	case 2:
	case 3:
		mmo_ev_init(b, "player.move", "x", pid, NULL);
		mmo_ev_set_pos(b, 5000 + (double)((r >> 8) % 5), 5000 + (double)((r >> 12) % 5), 0);
		break;
	default:
		mmo_ev_init(b, "combat.attack", "x", pid, NULL);
		snprintf(aux, 16, "p%u", (p + 1 + (r >> 16) % 3) % NPLAYERS);
		b->body.combat_attack.defender_id = aux;
		b->body.combat_attack.skill_id = (char *)skills[(r >> 24) % 3];
		break;
	}
}

/* Send request number k (REQ events, ids derived from k: a resend is
 * idempotent). Returns MMO_OK when acked. */
static int send_req(evlog_client *c, uint64_t k)
{
	static uint8_t buf[REQ][1024];
	struct evlog_in in[REQ];
	uint64_t seqs[REQ], rng = 1000 + k;
	int errs[REQ], err;

	for (unsigned j = 0; j < REQ; j++) {
		struct mmo_ev b;
		char pid[16], aux[16], eid[32];
		size_t len;

		build(&b, k * REQ + j, &rng, pid, aux);
		snprintf(eid, sizeof(eid), "c:%llu", (unsigned long long)(k * REQ + j));
		b.ev.event_id = eid;
		assert_int_equal(mmo_event_encode(&b.ev, buf[j], sizeof(buf[j]), &len), MMO_OK);
		in[j].buf = buf[j];
		in[j].len = len;
		in[j].priority = MMO_PRIO_HIGH;
	}
	err = evlog_client_append(c, in, REQ, seqs, errs);
	for (unsigned j = 0; !err && j < REQ; j++)
		assert_int_equal(errs[j], MMO_OK);
	return err;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

/* Every intent answered, none doubled, as seen by a read-only reader. */
static void wait_all_answered(struct node *n, struct outcome_census *c)
{
	char logdir[400], msg[256], why[256];
	struct evlog_opts o = {0};

	snprintf(logdir, sizeof(logdir), "%s/log", n->data);
	o.dir = logdir;
	o.readonly = true;
	for (int i = 0; i < 600; i++) {
		evlog *log;

		assert_int_equal(evlog_open(&o, &log, msg, sizeof(msg)), MMO_OK);
		if (check_outcomes(log, c, why, sizeof(why)))
			fail_msg("%s", why);
		evlog_close(log);
		if (c->intents && c->answered == c->intents)
			return;
		sleep_ms(100);
	}
	fail_msg("the world did not answer everything: %llu of %llu",
	         (unsigned long long)c->answered, (unsigned long long)c->intents);
}

/* Intents the log holds without an answer (read-only look). */
static uint64_t census_now(struct node *n)
{
	char logdir[400], msg[256], why[256];
	struct evlog_opts o = {0};
	struct outcome_census c;
	evlog *log;

	snprintf(logdir, sizeof(logdir), "%s/log", n->data);
	o.dir = logdir;
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &log, msg, sizeof(msg)), MMO_OK);
	if (check_outcomes(log, &c, why, sizeof(why)))
		fail_msg("%s", why);
	evlog_close(log);
	return c.intents - c.answered;
}

static int run(const char *const *args, const char *out_path)
{
	char *argv[16];
	size_t i;
	pid_t pid;
	int st;

	argv[0] = (char *)ts_mmo_bin();
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	unlink(out_path);
	pid = ts_spawn(argv, out_path);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool file_has(const char *path, const char *needle)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, needle) != NULL;
}

static void kill_mid_load_then_restart(void **state)
{
	struct node n = {0};
	struct outcome_census c;
	evlog_client *cli = NULL;
	void *zctx = zmq_ctx_new();
	uint64_t k = 0, total = 2 * NPLAYERS / REQ + 200;
	int crashes = 0, mid_load = 0;

	(void)state;
	assert_int_equal(ts_tmpdir(n.dir, sizeof(n.dir)), 0);
	snprintf(n.data, sizeof(n.data), "%s/data", n.dir);
	snprintf(n.logfile, sizeof(n.logfile), "%s/node.log", n.dir);
	snprintf(n.ingest, sizeof(n.ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(n.bus, sizeof(n.bus), "tcp://127.0.0.1:%d", ts_free_port());
	node_start(&n);
	assert_int_equal(evlog_client_open(zctx, n.ingest, 3000, &cli), MMO_OK);

	while (k < total) {
		if (send_req(cli, k) == MMO_OK) {
			k++;
		} else {
			/* The node is down or restarting: resend the same request. */
			sleep_ms(100);
			continue;
		}
		/* Crash rounds: kill -9 while the world is busy with the load. */
		if (crashes < 4 && k == (uint64_t)(20 + 45 * (crashes + 1))) {
			for (int j = 0; j < 10; j++)
				assert_int_equal(send_req(cli, k++), MMO_OK); /* the world lags */
			assert_int_not_equal(ts_stop(n.pid, SIGKILL, 5000), -1);
			crashes++;
			mid_load += census_now(&n) > 0;
			node_start(&n);
			/* A fresh client: the old one's in-flight request is gone. */
			evlog_client_close(cli);
			assert_int_equal(evlog_client_open(zctx, n.ingest, 3000, &cli), MMO_OK);
		}
	}
	assert_int_equal(crashes, 4);
	print_message("%d of %d kills left intents unanswered\n", mid_load, crashes);
	assert_true(mid_load >= 1);
	wait_all_answered(&n, &c);
	print_message("after %d kill -9: %llu intents, %llu outcomes, all answered once\n", crashes,
	              (unsigned long long)c.intents, (unsigned long long)c.outcomes);
	assert_int_equal(c.intents, total * REQ - NPLAYERS);
	evlog_client_close(cli);
	zmq_ctx_term(zctx);

	/* Stop cleanly: the node prints its state hash; the replay agrees. */
	int st = ts_stop(n.pid, SIGTERM, 30000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	{
		char *buf = NULL, *p, line[256] = "";
		size_t cap = 0;
		FILE *f = fopen(n.logfile, "r");
		unsigned long long seq = 0;
		char hex[65] = "";

		while (getline(&buf, &cap, f) > 0) {
			if ((p = strstr(buf, "world_node: stopped seq=")))
				snprintf(line, sizeof(line), "%s", p);
		}
		free(buf);
		fclose(f);
		assert_int_equal(sscanf(line, "world_node: stopped seq=%llu hash=%64s", &seq, hex),
		                 2);

		/* The same through `mmo replay`, read-only. */
		char out[400], to[32], expect[128];
		snprintf(out, sizeof(out), "%s/replay.out", n.dir);
		snprintf(to, sizeof(to), "%llu", seq);
		const char *a1[] = {"replay", "--data", n.data, "--to", to, NULL};
		assert_int_equal(run(a1, out), 0);
		snprintf(expect, sizeof(expect), "seq=%llu ", seq);
		assert_true(file_has(out, expect));
		snprintf(expect, sizeof(expect), "hash=%s", hex);
		if (!file_has(out, expect))
			fail_msg("mmo replay disagrees with the world (%s): see %s", hex, out);

		const char *a2[] = {"replay", "--data", n.data, "--verify", "--quiet", NULL};
		if (run(a2, out) != 0)
			fail_msg("mmo replay --verify failed: see %s", out);
		assert_true(file_has(out, "verify: ok"));

		/* Two dumps of the same seq are byte-identical (diff-able). */
		char d1[400], d2[400];
		snprintf(d1, sizeof(d1), "%s/a.json", n.dir);
		snprintf(d2, sizeof(d2), "%s/b.json", n.dir);
		const char *a3[] = {"replay", "--data", n.data, "--to", "500", "--dump", d1, NULL};
		const char *a4[] = {"replay", "--data",          n.data, "--to", "500", "--dump",
		                    d2,       "--from-snapshot", NULL};
		assert_int_equal(run(a3, out), 0);
		assert_int_equal(run(a4, out), 0);
		char cmd[1000];
		snprintf(cmd, sizeof(cmd), "cmp -s %s %s", d1, d2);
		assert_int_equal(system(cmd), 0);
		assert_true(file_has(d1, "\"seq\":500}"));

		const char *a5[] = {"replay", "--data", n.data, "--player", "p7", NULL};
		assert_int_equal(run(a5, out), 0);
		assert_true(file_has(out, "{\"seq\":"));
		assert_true(file_has(out, "\"player\":{\"alive\":"));

		const char *a6[] = {"replay",      "--data", n.data, "--bisect",
		                    "--invariant", "all",    NULL};
		assert_int_equal(run(a6, out), 0);
		assert_true(file_has(out, "bisect: all holds up to seq"));

		/* Bad usage is 2, an unreadable log 1, with one line. */
		const char *b1[] = {"replay", "--data", n.data, "--bisect", NULL};
		assert_int_equal(run(b1, out), 2);
		const char *b2[] = {"replay", "--data", n.data, "--to", "x", NULL};
		assert_int_equal(run(b2, out), 2);
		const char *b3[] = {"replay",      "--data", n.data, "--bisect",
		                    "--invariant", "nope",   NULL};
		assert_int_equal(run(b3, out), 2);
		const char *b4[] = {"replay", "--data", "/nonexistent", NULL};
		assert_int_equal(run(b4, out), 1);
		assert_true(file_has(out, "mmo replay: no log in /nonexistent"));
	}
	if (!getenv("MMO_KEEP"))
		ts_rmrf(n.dir);
	else
		print_message("kept %s\n", n.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(kill_mid_load_then_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
