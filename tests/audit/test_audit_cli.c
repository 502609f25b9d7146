/* test_audit_cli.c - `mmo audit query/verify/report` run as a process on a
 * generated log: filters, formats, paging, usage errors, the HTML report,
 * and tampering with the stored log (through LMDB and in the file). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <jansson.h>
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_run.h"
#include "log/evlog.h"
#include "gen.h"
#include "testsupport.h"

#define N 600

static char dir[4096];
static struct gen_ev truth[N];

static int setup(void **state)
{
	return ts_tmpdir(dir, sizeof(dir)) || gen_log(dir, N, 3, truth) ? -1 : 0;
}

static int teardown(void **state)
{
	ts_rmrf(dir);
	return 0;
}

/* The seqs of jsonl output, in order. */
static size_t seqs_of(const char *out, uint64_t *v, size_t cap)
{
	size_t n = 0;
	const char *p = out;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		json_error_t je;
		json_t *o = json_loadb(p, len, 0, &je);

		if (!o)
			fail_msg("not JSON: %.*s (%s)", (int)len, p, je.text);
		if (n < cap)
			v[n] = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		n++;
		json_decref(o);
		p += len + (nl ? 1 : 0);
	}
	return n;
}

static bool type_matches(const char *filter, const char *type)
{
	size_t n;

	if (!filter)
		return true;
	n = strlen(filter);
	return filter[n - 1] == '.' ? strncmp(type, filter, n) == 0 : strcmp(type, filter) == 0;
}

struct want {
	const char *player, *type, *region;
	uint64_t from, to;
	int64_t since, until; /* 0 = none */
};

static void expect_seqs(const struct want *w, const char *out)
{
	static uint64_t got[N + 1];
	size_t n = seqs_of(out, got, N + 1), k = 0;

	for (size_t i = 0; i < N; i++) {
		const struct gen_ev *e = &truth[i];

		if ((w->player && strcmp(w->player, e->player)) ||
		    (w->region && strcmp(w->region, e->region)) ||
		    !type_matches(w->type, e->type) || (w->from && e->seq < w->from) ||
		    (w->to && e->seq > w->to) || (w->since && e->ts < w->since) ||
		    (w->until && e->ts >= w->until))
			continue;
		if (k >= n || got[k] != e->seq)
			fail_msg("result %zu: got seq %llu, want %llu", k,
			         k < n ? (unsigned long long)got[k] : 0ULL,
			         (unsigned long long)e->seq);
		k++;
	}
	assert_int_equal(k, n);
}

static void query_jsonl_shows_every_field(void **state)
{
	struct run r;
	json_t *o;
	json_error_t je;
	const char *h;

	run_mmo(&r, "audit", "query", "--data", dir, "--player", "p3", "--type", "combat.result",
	        "--limit", "1", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(run_lines(r.out), 1);
	o = json_loads(r.out, 0, &je);
	assert_non_null(o);
	for (const char *k = "seq\0ts\0time\0type\0priority\0event_id\0player_id\0region_id\0"
	                     "cause_seq\0hash\0result\0damage\0attacker_id\0defender_id\0";
	     *k; k += strlen(k) + 1) {
		if (!json_object_get(o, k))
			fail_msg("field %s missing from %s", k, r.out);
	}
	assert_string_equal(json_string_value(json_object_get(o, "type")), "combat.result");
	assert_string_equal(json_string_value(json_object_get(o, "player_id")), "p3");
	assert_int_equal(json_integer_value(json_object_get(o, "priority")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "cause_seq")),
	                 json_integer_value(json_object_get(o, "seq")) - 1);
	h = json_string_value(json_object_get(o, "hash"));
	assert_non_null(h);
	assert_int_equal(strlen(h), 64);
	assert_int_equal(strspn(h, "0123456789abcdef"), 64);
	assert_non_null(strstr(json_string_value(json_object_get(o, "time")), "2026-01-0"));
	assert_non_null(strstr(r.err, "next_cursor="));
	json_decref(o);
	run_free(&r);
}

static void query_filters_return_exactly_the_expected_seqs(void **state)
{
	char since[64], until[64], from[32], to[32];
	int64_t s = GEN_BASE_US + GEN_DAY_US / 2, u = GEN_BASE_US + 2 * GEN_DAY_US + 7200000000LL;
	const char *players[] = {NULL, "p2"};
	const char *types[] = {NULL, "player.move", "combat.", "world."};
	const char *regions[] = {NULL, "r3"};

	/* --since in RFC 3339 (with an offset), --until in epoch ms */
	snprintf(since, sizeof(since), "2026-01-01T14:00:00+02:00");
	snprintf(until, sizeof(until), "%lld", (long long)(u / 1000));
	snprintf(from, sizeof(from), "%d", 50);
	snprintf(to, sizeof(to), "%d", 450);
	for (size_t a = 0; a < 2; a++)
		for (size_t b = 0; b < 4; b++)
			for (size_t c = 0; c < 2; c++)
				for (int range = 0; range < 3; range++) {
					struct want w = {players[a], types[b], regions[c], 0,
					                 0,          0,        0};
					char *argv[32];
					size_t n = 0;
					struct run r;

					argv[n++] = (char *)ts_mmo_bin();
					argv[n++] = "audit";
					argv[n++] = "query";
					argv[n++] = "--data";
					argv[n++] = dir;
					if (w.player) {
						argv[n++] = "--player";
						argv[n++] = (char *)w.player;
					}
					if (w.type) {
						argv[n++] = "--type";
						argv[n++] = (char *)w.type;
					}
					if (w.region) {
						argv[n++] = "--region";
						argv[n++] = (char *)w.region;
					}
					if (range == 1) {
						argv[n++] = "--from-seq";
						argv[n++] = from;
						argv[n++] = "--to-seq";
						argv[n++] = to;
						w.from = 50;
						w.to = 450;
					} else if (range == 2) {
						argv[n++] = "--since";
						argv[n++] = since;
						argv[n++] = "--until";
						argv[n++] = until;
						w.since = s;
						w.until = u;
					}
					argv[n] = NULL;
					run_argv(argv, &r);
					assert_int_equal(r.status, 0);
					expect_seqs(&w, r.out);
					run_free(&r);
				}
}

static void query_explain_shows_the_player_index_is_used(void **state)
{
	struct run r;
	size_t n = 0;
	char want[128];

	for (size_t i = 0; i < N; i++)
		n += !strcmp(truth[i].player, "p5");
	run_mmo(&r, "audit", "query", "--data", dir, "--player", "p5", "--explain", NULL);
	assert_int_equal(r.status, 0);
	snprintf(want, sizeof(want), "query: driver=player candidates=%zu scanned=%zu matched=%zu",
	         n, n, n);
	if (!strstr(r.err, want))
		fail_msg("want '%s' in: %s", want, r.err);
	run_free(&r);
}

/* "next_cursor=N more=M" from stderr. */
static void cursor_of(const char *err, uint64_t *next, int *more)
{
	const char *p = strstr(err, "next_cursor=");
	unsigned long long v;

	assert_non_null(p);
	assert_int_equal(sscanf(p, "next_cursor=%llu more=%d", &v, more), 2);
	*next = v;
}

static void paging_with_the_cursor_neither_skips_nor_repeats(void **state)
{
	static uint64_t all[N], page[N];
	struct run r;
	size_t nall, got = 0, pages = 0;
	uint64_t cursor = 0;
	int more = 1;
	char cur[32];

	run_mmo(&r, "audit", "query", "--data", dir, "--type", "combat.", "--region", "r1", NULL);
	assert_int_equal(r.status, 0);
	nall = seqs_of(r.out, all, N);
	cursor_of(r.err, &cursor, &more);
	assert_int_equal(more, 0);
	assert_int_equal(cursor, N + 1);
	run_free(&r);
	assert_true(nall > 20);

	cursor = 1;
	more = 1;
	while (more) {
		size_t n;

		snprintf(cur, sizeof(cur), "%llu", (unsigned long long)cursor);
		run_mmo(&r, "audit", "query", "--data", dir, "--type", "combat.", "--region", "r1",
		        "--limit", "7", "--cursor", cur, NULL);
		assert_int_equal(r.status, 0);
		n = seqs_of(r.out, page, N);
		cursor_of(r.err, &cursor, &more);
		assert_true(n == 7 || !more);
		for (size_t i = 0; i < n; i++) {
			assert_true(got < nall);
			assert_int_equal(page[i], all[got]);
			got++;
		}
		if (more)
			assert_int_equal(cursor, all[got]); /* the next match exactly */
		run_free(&r);
		pages++;
		assert_true(pages < 100);
	}
	assert_int_equal(got, nall);
	assert_int_equal(pages, (nall + 6) / 7); /* the last page says more=0 */
}

static void csv_and_table_formats(void **state)
{
	struct run r;
	const char *p;

	run_mmo(&r, "audit", "query", "--data", dir, "--type", "player.logout", "--limit", "3",
	        "--format", "csv", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(run_lines(r.out), 4);
	assert_true(!strncmp(r.out,
	                     "seq,ts,time,type,priority,event_id,player_id,region_id,"
	                     "cause_seq,body,hash\n",
	                     strlen("seq,ts,time,type,priority,event_id,player_id,region_id,"
	                            "cause_seq,body,hash\n")));
	/* the reason holds a comma and quotes: the body column is quoted */
	p = strstr(r.out, "\"{\"\"reason\"\":\"\"bye, \\\"\"friends\\\"\"\"\"}\"");
	if (!p)
		fail_msg("quoted body not found in: %s", r.out);
	assert_non_null(strstr(r.out, "12,")); /* seq 12 is the first logout */
	run_free(&r);

	run_mmo(&r, "audit", "query", "--data", dir, "--player", "p1", "--limit", "4", "--format",
	        "table", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(run_lines(r.out), 5);
	assert_true(!strncmp(r.out, "SEQ ", 4));
	assert_non_null(strstr(r.out, "HASH"));
	assert_non_null(strstr(r.out, "2026-01-01T"));
	run_free(&r);
}

static void expect_usage(const char *what, struct run *r)
{
	if (r->status != 2 || run_lines(r->err) != 1 || *r->out)
		fail_msg("%s: status %d, stderr '%s', stdout '%s'", what, r->status, r->err,
		         r->out);
	assert_true(!strncmp(r->err, "mmo audit", 9));
	run_free(r);
}

static void bad_arguments_exit_2_with_one_line(void **state)
{
	struct run r;

	run_mmo(&r, "audit", NULL);
	expect_usage("no subcommand", &r);
	run_mmo(&r, "audit", "frobnicate", NULL);
	expect_usage("unknown subcommand", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--limit", "0", NULL);
	expect_usage("--limit 0", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--limit", "x", NULL);
	expect_usage("--limit x", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--format", "xml", NULL);
	expect_usage("--format xml", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--player", "bad id!", NULL);
	expect_usage("--player bad", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--type", "Combat", NULL);
	expect_usage("--type bad", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--since", "yesterday", NULL);
	expect_usage("--since bad", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--since", "2026-13-01T00:00:00Z", NULL);
	expect_usage("--since month 13", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--since", "2026-01-02", "--until",
	        "2026-01-01", NULL);
	expect_usage("--until before --since", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--from-seq", "5", "--to-seq", "2", NULL);
	expect_usage("--to-seq before --from-seq", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--cursor", "0", NULL);
	expect_usage("--cursor 0", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--bogus", NULL);
	expect_usage("unknown option", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "--player", NULL);
	expect_usage("missing value", &r);
	run_mmo(&r, "audit", "query", "--data", dir, "extra", NULL);
	expect_usage("extra argument", &r);
	run_mmo(&r, "audit", "verify", "--data", dir, "--anchor", "zz", NULL);
	expect_usage("verify --anchor", &r);
	run_mmo(&r, "audit", "verify", "--data", dir, "--nope", NULL);
	expect_usage("verify unknown option", &r);
	run_mmo(&r, "audit", "export", "--data", dir, NULL);
	expect_usage("export without --out", &r);
	run_mmo(&r, "audit", "export", "--data", dir, "--out", "/tmp/x", "--format", "table", NULL);
	expect_usage("export --format table", &r);
	run_mmo(&r, "audit", "export", "--data", dir, "--out", "/tmp/x", "--from-seq", "100000",
	        NULL);
	expect_usage("export past the head", &r);
	run_mmo(&r, "audit", "verify-export", NULL);
	expect_usage("verify-export without dir", &r);
	run_mmo(&r, "audit", "verify-export", "/tmp", NULL);
	expect_usage("verify-export without --pubkey", &r);
	run_mmo(&r, "audit", "verify-export", "/tmp", "--pubkey", "abc", NULL);
	expect_usage("verify-export bad --pubkey", &r);
	run_mmo(&r, "audit", "report", "--data", dir, NULL);
	expect_usage("report without --out", &r);
	run_mmo(&r, "audit", "report", "--data", dir, "--out", "/tmp/r.html", "--top", "0", NULL);
	expect_usage("report --top 0", &r);
}

static void help_exits_0(void **state)
{
	const char *subs[] = {"query", "verify", "export", "verify-export", "report"};
	struct run r;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		run_mmo(&r, "audit", subs[i], "--help", NULL);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "usage: mmo audit"));
		run_free(&r);
	}
}

static void a_missing_log_exits_1_with_one_line(void **state)
{
	struct run r;

	run_mmo(&r, "audit", "query", "--data", "/nonexistent/mmo-data", NULL);
	assert_int_equal(r.status, 1);
	assert_int_equal(run_lines(r.err), 1);
	assert_non_null(strstr(r.err, "mmo audit query: "));
	run_free(&r);
}

static void verify_keeps_its_output_lines(void **state)
{
	struct run r;

	run_mmo(&r, "audit", "verify", "--data", dir, "--quiet", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "verify: ok, 600 events checked, indexes consistent\n");
	run_free(&r);
	run_mmo(&r, "audit", "verify", "--data", dir, "--from-seq", "100", "--to-seq", "200", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "verify: ok, 101 events checked"));
	assert_non_null(strstr(r.err, "verify: 101/101 events (100%)"));
	run_free(&r);
}

static void report_shows_the_range(void **state)
{
	char out[4200], want[256];
	uint64_t p3 = 0, hits = 0, logins_day0 = 0, sec = 0;
	struct run r;
	char *html;

	for (size_t i = 0; i < N; i++) {
		p3 += !strcmp(truth[i].player, "p3");
		hits += !strcmp(truth[i].result, "hit");
		sec += !strcmp(truth[i].type, "security.login_failed");
		logins_day0 += !strcmp(truth[i].type, "player.login") &&
		               truth[i].ts < GEN_BASE_US + GEN_DAY_US;
	}
	snprintf(out, sizeof(out), "%s/report.html", dir);
	run_mmo(&r, "audit", "report", "--data", dir, "--out", out, "--quiet", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "report: "));
	assert_non_null(strstr(r.out, "600 events (seq 1..600), chain intact"));
	run_free(&r);
	html = slurp(out, NULL);
	assert_non_null(html);
	assert_true(!strncmp(html, "<!DOCTYPE html>", 15));
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src=\"")); /* self-contained: nothing to fetch */
	assert_null(strstr(html, "href=\""));
	assert_non_null(strstr(html, "<svg id=\"chart-types\""));
	assert_non_null(strstr(html, "<svg id=\"chart-logins\""));
	assert_non_null(strstr(html, "<span id=\"total\">600</span>"));
	assert_non_null(strstr(html, "chain: intact, 600 events checked (seq 1..600)"));
	/* three days of logins */
	snprintf(want, sizeof(want), "<tr><td>2026-01-01</td><td>%llu</td></tr>",
	         (unsigned long long)logins_day0);
	assert_non_null(strstr(html, want));
	assert_non_null(strstr(html, "<tr><td>2026-01-03</td>"));
	snprintf(want, sizeof(want), "<tr><td>p3</td><td>%llu</td></tr>", (unsigned long long)p3);
	assert_non_null(strstr(html, want));
	snprintf(want, sizeof(want), "<tr><td>hit</td><td>%llu</td></tr>",
	         (unsigned long long)hits);
	assert_non_null(strstr(html, want));
	snprintf(want, sizeof(want), "<span id=\"security-total\">%llu</span>",
	         (unsigned long long)sec * 3);
	assert_non_null(strstr(html, want));
	assert_non_null(strstr(html, "<tr><td>security.login_failed|10.0.0.1</td>"));
	assert_non_null(strstr(html, "ops&lt;1&gt;")); /* escaped */
	assert_null(strstr(html, "ops<1>"));
	assert_non_null(strstr(html, "<tr><td>out_of_bounds</td>"));
	free(html);

	/* a time range */
	run_mmo(&r, "audit", "report", "--data", dir, "--out", out, "--since", "2026-01-02",
	        "--until", "2026-01-03", "--quiet", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "(seq 201..400), chain intact"));
	run_free(&r);
}

static void report_renders_in_headless_chromium(void **state)
{
	const char *names[] = {"chromium", "chromium-browser", "google-chrome", "headless_shell"};
	const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/snap/bin", "/opt/google/chrome"};
	char bin[256] = "", html[4200], png[4200], shot[4300], url[4300];
	struct stat st;
	struct run r;

	for (size_t i = 0; i < 4 && !*bin; i++)
		for (size_t j = 0; j < 4 && !*bin; j++) {
			snprintf(bin, sizeof(bin), "%s/%s", dirs[j], names[i]);
			if (access(bin, X_OK) != 0)
				bin[0] = 0;
		}
	if (!*bin) {
		print_message("SKIP report_renders_in_headless_chromium: no chromium, "
		              "chromium-browser or google-chrome in /usr/bin, /usr/local/bin\n");
		skip();
	}
	snprintf(html, sizeof(html), "%s/render.html", dir);
	snprintf(png, sizeof(png), "%s/render.png", dir);
	run_mmo(&r, "audit", "report", "--data", dir, "--out", html, "--quiet", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	snprintf(shot, sizeof(shot), "--screenshot=%s", png);
	snprintf(url, sizeof(url), "file://%s", html);
	{
		char *argv[] = {bin,
		                "--headless",
		                "--no-sandbox",
		                "--disable-gpu",
		                shot,
		                "--window-size=1200,2400",
		                url,
		                NULL};

		run_argv(argv, &r);
	}
	assert_int_equal(r.status, 0);
	run_free(&r);
	assert_int_equal(stat(png, &st), 0);
	assert_true(st.st_size > 10000);
}

/* ------------------------------------------------------------ tampering */

/* Open DIR/log's LMDB read-write behind the log's back. */
static void lmdb_open(const char *d, MDB_env **env, MDB_txn **txn, MDB_dbi *events)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/log", d);
	assert_int_equal(mdb_env_create(env), 0);
	assert_int_equal(mdb_env_set_maxdbs(*env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(*env, (size_t)1 << 30), 0);
	assert_int_equal(mdb_env_open(*env, p, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
	assert_int_equal(mdb_dbi_open(*txn, "events", 0, events), 0);
}

static void key(uint8_t k[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		k[i] = (uint8_t)seq;
}

static void expect_verify_fails_at(const char *d, const char *line)
{
	struct run r;

	run_mmo(&r, "audit", "verify", "--data", d, "--quiet", NULL);
	assert_int_equal(r.status, 1);
	if (!strstr(r.out, line))
		fail_msg("want '%s' in '%s'", line, r.out);
	run_free(&r);
}

static void tampering_with_the_stored_log_is_detected(void **state)
{
	char d[4096], out[4200], path[4200];
	uint8_t k[8], buf[2][4096];
	MDB_val kv = {8, k}, v, w;
	size_t len[2];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi ev;
	struct run r;
	char *html, *file;
	size_t flen;
	FILE *f;

	/* 1. flip one byte of seq 50 through LMDB */
	assert_int_equal(ts_tmpdir(d, sizeof(d)), 0);
	assert_int_equal(gen_log(d, 120, 1, NULL), 0);
	lmdb_open(d, &env, &txn, &ev);
	key(k, 50);
	assert_int_equal(mdb_get(txn, ev, &kv, &v), 0);
	memcpy(buf[0], v.mv_data, v.mv_size);
	buf[0][EVLOG_HDR_LEN + 4] ^= 0x01;
	w.mv_size = v.mv_size;
	w.mv_data = buf[0];
	assert_int_equal(mdb_put(txn, ev, &kv, &w, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_verify_fails_at(d, "verify: FAILED at seq 50: hash mismatch");
	snprintf(out, sizeof(out), "%s/r.html", d);
	run_mmo(&r, "audit", "report", "--data", d, "--out", out, "--quiet", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "chain DAMAGED"));
	run_free(&r);
	html = slurp(out, NULL);
	assert_non_null(strstr(html, "chain: DAMAGED at seq 50: hash mismatch"));
	free(html);
	snprintf(out, sizeof(out), "%s/export", d);
	run_mmo(&r, "audit", "export", "--data", d, "--out", out, "--quiet", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "log damaged at seq 50: hash mismatch"));
	run_free(&r);
	ts_rmrf(d);

	/* 2. flip one byte in the file itself: the event_id "ev-77" of seq 78 */
	assert_int_equal(ts_tmpdir(d, sizeof(d)), 0);
	assert_int_equal(gen_log(d, 120, 1, NULL), 0);
	snprintf(path, sizeof(path), "%s/log/data.mdb", d);
	file = slurp(path, &flen);
	assert_non_null(file);
	{
		const char needle[] = "\x0a\x05"
		                      "ev-77";
		char *p = memmem(file, flen, needle, sizeof(needle) - 1);

		/* Every copy: LMDB's copy-on-write may leave stale pages holding it. */
		assert_non_null(p);
		f = fopen(path, "r+b");
		assert_non_null(f);
		for (; p;
		     p = memmem(p + 1, flen - (size_t)(p + 1 - file), needle, sizeof(needle) - 1)) {
			fseek(f, (long)(p - file) + 6, SEEK_SET);
			fputc('8', f);
		}
		fclose(f);
	}
	free(file);
	expect_verify_fails_at(d, "verify: FAILED at seq 78: hash mismatch");
	ts_rmrf(d);

	/* 3. delete a record; 4. reorder two */
	assert_int_equal(ts_tmpdir(d, sizeof(d)), 0);
	assert_int_equal(gen_log(d, 120, 1, NULL), 0);
	lmdb_open(d, &env, &txn, &ev);
	key(k, 30);
	assert_int_equal(mdb_del(txn, ev, &kv, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_verify_fails_at(d, "verify: FAILED at seq 30: record missing");
	ts_rmrf(d);

	assert_int_equal(ts_tmpdir(d, sizeof(d)), 0);
	assert_int_equal(gen_log(d, 120, 1, NULL), 0);
	lmdb_open(d, &env, &txn, &ev);
	for (int i = 0; i < 2; i++) {
		key(k, 10 + (uint64_t)i);
		assert_int_equal(mdb_get(txn, ev, &kv, &v), 0);
		memcpy(buf[i], v.mv_data, v.mv_size);
		len[i] = v.mv_size;
	}
	for (int i = 0; i < 2; i++) {
		key(k, 10 + (uint64_t)i);
		w.mv_size = len[1 - i];
		w.mv_data = buf[1 - i];
		assert_int_equal(mdb_put(txn, ev, &kv, &w, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_verify_fails_at(d, "verify: FAILED at seq 10: hash mismatch");
	ts_rmrf(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(query_jsonl_shows_every_field),
	    cmocka_unit_test(query_filters_return_exactly_the_expected_seqs),
	    cmocka_unit_test(query_explain_shows_the_player_index_is_used),
	    cmocka_unit_test(paging_with_the_cursor_neither_skips_nor_repeats),
	    cmocka_unit_test(csv_and_table_formats),
	    cmocka_unit_test(bad_arguments_exit_2_with_one_line),
	    cmocka_unit_test(help_exits_0),
	    cmocka_unit_test(a_missing_log_exits_1_with_one_line),
	    cmocka_unit_test(verify_keeps_its_output_lines),
	    cmocka_unit_test(report_shows_the_range),
	    cmocka_unit_test(report_renders_in_headless_chromium),
	    cmocka_unit_test(tampering_with_the_stored_log_is_detected),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
