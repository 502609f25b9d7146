/* test_diverge.c - built with the world's sources and one rule changed on
 * purpose (-DMMO_WORLD_ALTERED_RULES: punch does one more damage). It plays
 * a game with the altered rules, then the real `mmo replay --verify` must
 * name the first divergent seq: the first punch that hit. It also plants
 * an invariant violation for `mmo replay --bisect` to find. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "game.h"

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

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);

	assert_non_null(f);
	buf[fread(buf, 1, (1 << 20) - 1, f)] = 0;
	fclose(f);
	return buf;
}

/* The first intent answered by a punch that did damage. */
static uint64_t first_punch_hit(evlog *log)
{
	struct evlog_rec rec;
	evlog_iter *it;
	uint64_t found = 0;

	assert_int_equal(evlog_iter_open(log, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	while (!found && evlog_iter_next(it, &rec) == MMO_OK) {
		Mmo__Event *e;

		assert_int_equal(evlog_rec_decode(&rec, &e), MMO_OK);
		if (e->body_case == MMO__EVENT__BODY_COMBAT_RESULT &&
		    !strcmp(e->combat_result->skill_id, "punch") && e->combat_result->damage > 0)
			found = e->cause_seq;
		mmo_event_free(e);
	}
	evlog_iter_close(it);
	return found;
}

static void verify_names_the_first_seq_an_altered_rule_changed(void **state)
{
	struct game *g = game_new(21);
	char data[300], out[300], want[64];
	uint64_t bad, planted;
	struct mmo_ev b;
	char *text;

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 6000, 20);
	/* An operator's bad correction, for --bisect. */
	mmo_ev_init(&b, "world.update", "op:1", "p9", "r_0_0");
	b.body.world_update.entity_id = "p9";
	b.body.world_update.entity_type = "player";
	mmo_ev_set_pos(&b, 5000, 20000, 0);
	queue(g, &b.ev);
	commit(g);
	planted = head_of(g->log);
	world_pass(g);
	game_play(g, 2000, 20);
	bad = first_punch_hit(g->log);
	assert_true(bad > 0);
	snprintf(data, sizeof(data), "%s", g->dir);
	snprintf(out, sizeof(out), "%s/out.txt", g->dir);

	const char *verify[] = {"replay", "--data", data, "--verify", "--quiet", NULL};
	assert_int_equal(run(verify, out), 1);
	text = slurp(out);
	print_message("%s", text);
	snprintf(want, sizeof(want), "divergence: seq %llu (combat.attack",
	         (unsigned long long)bad);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "field damage"));
	free(text);

	/* Replay itself does not re-decide: it shows what the log says. */
	const char *plain[] = {"replay", "--data", data, "--quiet", NULL};
	assert_int_equal(run(plain, out), 0);

	const char *bisect[] = {"replay",      "--data",    data, "--bisect",
	                        "--invariant", "in_bounds", NULL};
	assert_int_equal(run(bisect, out), 1);
	text = slurp(out);
	snprintf(want, sizeof(want),
	         "bisect: in_bounds first fails at seq %llu: ", (unsigned long long)planted);
	if (!strstr(text, want))
		fail_msg("expected '%s' in: %s", want, text);
	assert_non_null(strstr(text, "player p9"));
	free(text);
	game_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(verify_names_the_first_seq_an_altered_rule_changed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
