/* test_cli.c - `mmo` and `mmo serve`: usage errors, refusals, start and stop.
 *
 * Every bad invocation exits 2 with exactly one line on stderr (no usage
 * dump), a refusal to run exits 1 with one line, and a served log stops
 * cleanly on SIGTERM with exit 0.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <zmq.h>

#include "cli_run.h"
#include "log/evlog.h"
#include "testsupport.h"

static void expect_usage_error(const char *needle, ...)
{
	char *argv[16];
	struct run r;
	va_list ap;
	int n = 0;

	argv[n++] = (char *)ts_mmo_bin();
	va_start(ap, needle);
	for (char *a; n < 15 && (a = va_arg(ap, char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	run_argv(argv, &r);
	assert_int_equal(r.status, 2);
	assert_int_equal(run_lines(r.err), 1);
	assert_non_null(strstr(r.err, needle));
	assert_string_equal(r.out, "");
	run_free(&r);
}

static void unknown_command_is_a_usage_error(void **state)
{
	(void)state;
	expect_usage_error("unknown command 'frobnicate'", "frobnicate", NULL);
}

static void serve_rejects_bad_options_with_one_line(void **state)
{
	(void)state;
	expect_usage_error("unknown role 'dragons'", "serve", "--roles", "log,dragons", NULL);
	expect_usage_error("--sync must be full or none", "serve", "--sync", "sometimes", NULL);
	expect_usage_error("--map-size", "serve", "--map-size", "12Q", NULL);
	expect_usage_error("--queue-max", "serve", "--queue-max", "0", NULL);
	expect_usage_error("--snapshot-every", "serve", "--snapshot-every", "-5", NULL);
	expect_usage_error("unexpected argument 'extra'", "serve", "extra", NULL);
	expect_usage_error("unrecognized option", "serve", "--no-such-option", NULL);
	expect_usage_error("--http-threads takes 1..20000", "serve", "--http-threads", "0", NULL);
	expect_usage_error("--ws-max", "serve", "--ws-max", "many", NULL);
}

static void help_exits_0_on_stdout(void **state)
{
	struct run r;

	(void)state;
	run_mmo(&r, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "serve"));
	assert_non_null(strstr(r.out, "replay"));
	run_free(&r);
	run_mmo(&r, "serve", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--sync full|none"));
	run_free(&r);
}

/* A log written by a newer format: serve refuses it, naming both versions. */
static void serve_refuses_a_newer_format(void **state)
{
	char dir[4096], logdir[4200], msg[256];
	struct evlog_opts o = {0};
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t two[4] = {0, 0, 0, 2};
	MDB_val k = {6, "format"}, v = {4, two};
	struct run r;
	evlog *l;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	o.dir = logdir;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_OK);
	evlog_close(l);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, logdir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	run_mmo(&r, "serve", "--roles", "log", "--data", dir, NULL);
	assert_int_equal(r.status, 1);
	assert_int_equal(run_lines(r.err), 1);
	assert_non_null(strstr(r.err, "log format 2 is newer than this build supports (1)"));
	run_free(&r);
	ts_rmrf(dir);
}

/* The log alone on TCP: ready line, SIGTERM, exit 0 and the stopped line. */
static void serve_starts_and_stops_cleanly(void **state)
{
	char dir[4096], logf[4200], data[4200], ingest[64], bus[64];
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	snprintf(logf, sizeof(logf), "%s/serve.log", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%d", ts_free_port());
	char *argv[] = {(char *)ts_mmo_bin(), "serve", "--roles", "log", "--data", data,
	                "--ingest",           ingest,  "--bus",   bus,   NULL};
	pid = ts_spawn(argv, logf);
	assert_true(pid > 0);
	assert_true(ts_wait_log(logf, "ready: roles=log", 10000));
	status = ts_stop(pid, SIGTERM, 10000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(ts_wait_log(logf, "stopped: head_seq=0", 100));
	assert_false(ts_wait_log(logf, "--insecure", 0)); /* loopback needs no --insecure */
	/* The same endpoint taken twice: the second serve fails with exit 1.
	 * A log file of its own: the first one already says "ready". */
	snprintf(logf, sizeof(logf), "%s/serve2.log", dir);
	pid = ts_spawn(argv, logf);
	assert_true(ts_wait_log(logf, "ready: roles=log", 10000));
	{
		struct run r;
		char data2[4300];

		snprintf(data2, sizeof(data2), "%s/data2", dir);
		char *argv2[] = {(char *)ts_mmo_bin(), "serve", "--roles", "log", "--data", data2,
		                 "--ingest",           ingest,  "--bus",   bus,   NULL};
		run_argv(argv2, &r);
		assert_int_equal(r.status, 1);
		assert_non_null(strstr(r.err, "cannot bind"));
		run_free(&r);
	}
	status = ts_stop(pid, SIGTERM, 10000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ts_rmrf(dir);
}

/* The log's ingest and bus have no authentication yet: serve refuses to
 * bind them off loopback without --insecure (exit 2, one line naming the
 * option), and with it starts and says so in one WARN line. */
static void serve_refuses_a_non_loopback_endpoint_without_insecure(void **state)
{
	char dir[4096], logf[4200], data[4200], ingest[64], bus[64], lo_bus[64], text[8192];
	int status, port = ts_free_port();
	struct stat st;
	pid_t pid;
	FILE *fp;
	size_t n;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	snprintf(logf, sizeof(logf), "%s/serve.log", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(ingest, sizeof(ingest), "tcp://0.0.0.0:%d", port);
	snprintf(lo_bus, sizeof(lo_bus), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(bus, sizeof(bus), "tcp://0.0.0.0:%d", ts_free_port());
	expect_usage_error("--ingest tcp://0.0.0.0:", "serve", "--roles", "log", "--data", data,
	                   "--ingest", ingest, "--bus", lo_bus, NULL);
	expect_usage_error("pass --insecure", "serve", "--roles", "log", "--data", data, "--ingest",
	                   ingest, "--bus", lo_bus, NULL);
	expect_usage_error("--bus tcp://0.0.0.0:", "serve", "--roles", "log", "--data", data,
	                   "--ingest", lo_bus, "--bus", bus, NULL);
	expect_usage_error("--ingest tcp://*:", "serve", "--roles", "log", "--data", data,
	                   "--ingest", "tcp://*:5555", "--bus", lo_bus, NULL);
	assert_int_equal(stat(data, &st), -1); /* refused before anything was made */

	/* With --insecure it starts, with one WARN line naming the endpoint. */
	char *argv[] = {(char *)ts_mmo_bin(), "serve", "--roles", "log",  "--data",     data,
	                "--ingest",           ingest,  "--bus",   lo_bus, "--insecure", NULL};
	pid = ts_spawn(argv, logf);
	assert_true(pid > 0);
	assert_true(ts_wait_log(logf, "ready: roles=log", 10000));
	fp = fopen(logf, "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = 0;
	fclose(fp);
	char warn[128];
	snprintf(warn, sizeof(warn), "serve: --insecure: --ingest %s accepts anyone", ingest);
	assert_non_null(strstr(text, warn));
	assert_non_null(strstr(text, "WARN")); /* at level WARN */
	assert_null(strstr(strstr(text, warn) + strlen(warn),
	                   "--insecure: ")); /* one line: the bus is local */
	/* And it serves on that port. */
	{
		void *ctx = zmq_ctx_new();
		evlog_client *c = NULL;
		char ep[64];
		uint64_t head = 99;

		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
		assert_int_equal(evlog_client_open(ctx, ep, 5000, &c), MMO_OK);
		assert_int_equal(evlog_client_head(c, &head), MMO_OK);
		assert_int_equal(head, 0);
		evlog_client_close(c);
		zmq_ctx_term(ctx);
	}
	status = ts_stop(pid, SIGTERM, 10000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	ts_rmrf(dir);
}

/* Operator commands leave an admin.action event, even while the log serves,
 * and the served log goes on with the next seq. */
static void operator_commands_are_recorded_in_the_log(void **state)
{
	char dir[4096], data[4200], logf[4200], ingest[64], bus[64], cmd[9000], msg[256];
	struct evlog_opts o = {0};
	struct evlog_verify_result vr;
	struct evlog_rec rec;
	evlog_iter *it;
	evlog *l;
	int status, admin = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(logf, sizeof(logf), "%s/serve.log", dir);
	snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%d", ts_free_port());
	char *argv[] = {(char *)ts_mmo_bin(), "serve", "--roles", "log", "--data", data,
	                "--ingest",           ingest,  "--bus",   bus,   NULL};
	pid = ts_spawn(argv, logf);
	assert_true(ts_wait_log(logf, "ready: roles=log", 10000));

	snprintf(cmd, sizeof(cmd),
	         "printf 'a long password' | '%s' user add ops_7 --password-stdin --data '%s' "
	         ">/dev/null && '%s' user role ops_7 auditor --data '%s' >/dev/null",
	         ts_mmo_bin(), data, ts_mmo_bin(), data);
	assert_int_equal(system(cmd), 0);

	/* The server still appends, after the operator's event. */
	{
		void *z = zmq_ctx_new();
		evlog_client *c;
		struct mmo_ev b;
		uint8_t buf[256];
		struct evlog_in in;
		uint64_t seq = 0;
		int err = -1;

		assert_int_equal(evlog_client_open(z, ingest, 5000, &c), MMO_OK);
		assert_int_equal(mmo_ev_init(&b, "stats.update", "after-admin", NULL, NULL),
		                 MMO_OK);
		b.body.stats_update.name = "x";
		assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &in.len), MMO_OK);
		in.buf = buf;
		in.priority = 4;
		assert_int_equal(evlog_client_append(c, &in, 1, &seq, &err), MMO_OK);
		assert_int_equal(err, MMO_OK);
		assert_int_equal(seq, 2); /* 1 is the operator's */
		evlog_client_close(c);
		zmq_ctx_term(z);
	}
	status = ts_stop(pid, SIGTERM, 10000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	snprintf(cmd, sizeof(cmd), "%s/log", data);
	o.dir = cmd;
	o.readonly = true;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(evlog_iter_open(l, EVLOG_BY_TYPE, "admin.action", 1, &it), MMO_OK);
	while (evlog_iter_next(it, &rec) == MMO_OK) {
		Mmo__Event *ev;

		assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
		assert_string_equal(ev->admin_action->command, "user role");
		assert_string_equal(ev->admin_action->detail, "user=ops_7 role=auditor");
		assert_true(ev->admin_action->actor[0] != 0);
		assert_int_equal(rec.priority, 1);
		mmo_event_free(ev);
		admin++;
	}
	evlog_iter_close(it);
	assert_int_equal(admin, 1);
	assert_int_equal(evlog_verify(l, 1, 0, NULL, true, NULL, NULL, &vr), MMO_OK);
	assert_int_equal(vr.checked, 2);
	evlog_close(l);
	ts_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(unknown_command_is_a_usage_error),
	    cmocka_unit_test(serve_rejects_bad_options_with_one_line),
	    cmocka_unit_test(help_exits_0_on_stdout),
	    cmocka_unit_test(serve_refuses_a_newer_format),
	    cmocka_unit_test(serve_starts_and_stops_cleanly),
	    cmocka_unit_test(serve_refuses_a_non_loopback_endpoint_without_insecure),
	    cmocka_unit_test(operator_commands_are_recorded_in_the_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
