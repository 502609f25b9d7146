/* test_audit_export.c - `mmo audit export` and `verify-export`, and the
 * third-party check of docs/audit.md (python3 + openssl) on good and
 * tampered exports. */
#include <jansson.h>
#include <setjmp.h>
#include <sodium.h>
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
#include "gen.h"
#include "testsupport.h"

#define N 1000

static char dir[4096];
static struct gen_ev truth[N];

static int setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	return ts_tmpdir(dir, sizeof(dir)) || gen_log(dir, N, 3, truth) ? -1 : 0;
}

static int teardown(void **state)
{
	ts_rmrf(dir);
	return 0;
}

/* Export into DIR/<name> with extra arguments; returns the public key hex
 * printed (65 bytes into pk). */
static void export(const char *name, char *pk, char *const extra[])
{
	char out[4200], *argv[32];
	const char *p;
	size_t n = 0;
	struct run r;

	snprintf(out, sizeof(out), "%s/%s", dir, name);
	argv[n++] = (char *)ts_mmo_bin();
	argv[n++] = "audit";
	argv[n++] = "export";
	argv[n++] = "--data";
	argv[n++] = dir;
	argv[n++] = "--out";
	argv[n++] = out;
	for (size_t i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	run_argv(argv, &r);
	if (r.status != 0)
		fail_msg("export %s: status %d: %s", name, r.status, r.err);
	assert_true(!strncmp(r.out, "export: ok, ", 12));
	p = strstr(r.out, "public key ");
	assert_non_null(p);
	snprintf(pk, 65, "%s", p + 11);
	assert_int_equal(strspn(pk, "0123456789abcdef"), 64);
	run_free(&r);
}

static void verify_export(const char *name, const char *pk, struct run *r)
{
	char out[4200];

	snprintf(out, sizeof(out), "%s/%s", dir, name);
	run_mmo(r, "audit", "verify-export", out, "--pubkey", pk, NULL);
}

static void third_party(const char *name, const char *pk, struct run *r)
{
	char out[4200];
	char *argv[] = {"/usr/bin/env", "python3", AUDIT_CHECK_PY, out, (char *)pk, NULL};

	snprintf(out, sizeof(out), "%s/%s", dir, name);
	run_argv(argv, r);
}

static json_t *manifest(const char *name)
{
	char path[4200];
	json_error_t je;
	json_t *m;

	snprintf(path, sizeof(path), "%s/%s/manifest.json", dir, name);
	m = json_load_file(path, 0, &je);
	assert_non_null(m);
	return m;
}

static void export_then_verify_export(void **state)
{
	char *chunk[] = {"--chunk", "300", "--quiet", NULL};
	char pk[65], path[4200], *s;
	const char *k;
	json_t *m, *counts, *files;
	struct stat st;
	struct run r;
	size_t i;
	json_t *v;
	uint64_t sum = 0, results = 0;

	export("full", pk, chunk);
	/* the key was made on first use, 0600, its public half beside it */
	snprintf(path, sizeof(path), "%s/audit_ed25519.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/audit_ed25519.pub", dir);
	s = slurp(path, NULL);
	assert_non_null(s);
	assert_true(!strncmp(s, pk, 64));
	free(s);
	snprintf(path, sizeof(path), "%s/full/public_key.hex", dir);
	s = slurp(path, NULL);
	assert_true(!strncmp(s, pk, 64));
	free(s);

	m = manifest("full");
	assert_string_equal(json_string_value(json_object_get(m, "format")), "mmo-audit-export/1");
	assert_int_equal(json_integer_value(json_object_get(m, "events")), N);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(m, "range"), "from_seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "range"), "to_seq")),
	                 N);
	assert_non_null(strstr(json_string_value(json_object_get(m, "tool")), "mmo "));
	assert_string_equal(json_string_value(json_object_get(m, "prev_hash")),
	                    "0000000000000000000000000000000000000000000000000000000000000000");
	counts = json_object_get(m, "counts_by_type");
	json_object_foreach(counts, k, v) sum += (uint64_t)json_integer_value(v);
	assert_int_equal(sum, N);
	for (size_t j = 0; j < N; j++)
		results += !strcmp(truth[j].type, "combat.result");
	assert_int_equal(json_integer_value(json_object_get(counts, "combat.result")), results);
	files = json_object_get(m, "files");
	assert_int_equal(json_array_size(files), 4);
	json_array_foreach(files, i, v)
	{
		assert_int_equal(strlen(json_string_value(json_object_get(v, "sha256"))), 64);
		assert_int_equal(json_integer_value(json_object_get(v, "events")),
		                 i < 3 ? 300 : 100);
	}
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(m, "signature"), "public_key")), pk);
	json_decref(m);

	verify_export("full", pk, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "verify-export: ok, 1000 events (seq 1..1000), 4 file(s), chain "
	                           "and signature valid\n");
	run_free(&r);

	/* sha256sum -c, a standard tool, agrees */
	{
		char cmd[4400];
		char *argv[] = {"/bin/sh", "-c", cmd, NULL};

		snprintf(cmd, sizeof(cmd), "cd '%s/full' && sha256sum -c SHA256SUMS", dir);
		run_argv(argv, &r);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "events-000004.jsonl: OK"));
		run_free(&r);
	}
}

static void a_csv_range_export_with_a_given_key(void **state)
{
	char keyfile[4200], hex[65], want[65], pk[65];
	uint8_t seed[32], pub[32], sec[64];
	char *extra[] = {"--from-seq", "100",   "--to-seq", "700",     "--format",
	                 "csv",        "--key", keyfile,    "--quiet", NULL};
	json_t *m;
	struct run r;
	FILE *f;

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i * 7 + 1);
	crypto_sign_seed_keypair(pub, sec, seed);
	sodium_bin2hex(want, sizeof(want), pub, sizeof(pub));
	sodium_bin2hex(hex, sizeof(hex), seed, sizeof(seed));
	snprintf(keyfile, sizeof(keyfile), "%s/given.key", dir);
	f = fopen(keyfile, "w");
	fprintf(f, "%s\n", hex);
	fclose(f);
	chmod(keyfile, 0600);

	export("csv", pk, extra);
	assert_string_equal(pk, want);
	m = manifest("csv");
	assert_int_equal(json_integer_value(json_object_get(m, "events")), 601);
	assert_string_equal(json_string_value(json_object_get(m, "event_format")), "csv");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "first"), "seq")),
	                 100);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "last"), "seq")),
	                 700);
	json_decref(m);
	verify_export("csv", pk, &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "verify-export: ok, 601 events (seq 100..700), 1 file(s)"));
	run_free(&r);
	third_party("csv", pk, &r);
	if (r.status != 0)
		fail_msg("third-party check of csv: %s%s", r.out, r.err);
	assert_non_null(strstr(r.out, "ok: 601 events, seq 100..700"));
	run_free(&r);
}

static void a_time_window_export(void **state)
{
	char *extra[] = {
	    "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-03T00:00:00Z", "--quiet", NULL};
	uint64_t first = 0, last = 0;
	char pk[65];
	json_t *m;
	struct run r;

	for (size_t i = 0; i < N; i++) {
		if (truth[i].ts >= GEN_BASE_US + GEN_DAY_US &&
		    truth[i].ts < GEN_BASE_US + 2 * GEN_DAY_US) {
			if (!first)
				first = truth[i].seq;
			last = truth[i].seq;
		}
	}
	export("day2", pk, extra);
	m = manifest("day2");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(m, "range"), "from_seq")), first);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "range"), "to_seq")),
	                 last);
	json_decref(m);
	verify_export("day2", pk, &r);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void the_third_party_check_passes_on_a_good_export(void **state)
{
	char pk[65];
	struct run r;

	export("tp", pk, NULL);
	third_party("tp", pk, &r);
	if (r.status != 0)
		fail_msg("third-party check: %s%s", r.out, r.err);
	assert_non_null(strstr(r.out, "ok: 1000 events, seq 1..1000"));
	run_free(&r);
}

static void flip_byte(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	int c;

	assert_non_null(f);
	fseek(f, off, SEEK_SET);
	c = fgetc(f);
	fseek(f, off, SEEK_SET);
	fputc(c ^ 0x01, f);
	fclose(f);
}

static void one_edited_byte_in_an_events_file_is_named(void **state)
{
	char *chunk[] = {"--chunk", "400", "--quiet", NULL};
	char pk[65], path[4200];
	struct run r;

	export("t1", pk, chunk);
	snprintf(path, sizeof(path), "%s/t1/events-000002.jsonl", dir);
	flip_byte(path, 5000);
	verify_export("t1", pk, &r);
	assert_int_equal(r.status, 1);
	if (!strstr(r.out, "verify-export: FAILED: events-000002.jsonl: sha256 mismatch"))
		fail_msg("got: %s", r.out);
	assert_int_equal(run_lines(r.err), 1);
	run_free(&r);
	third_party("t1", pk, &r);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "FAILED: events-000002.jsonl: sha256 mismatch"));
	run_free(&r);
}

static void an_edited_manifest_fails_the_signature(void **state)
{
	char pk[65], path[4200], other[65];
	char *text, *p;
	struct run r;
	FILE *f;

	export("t2", pk, NULL);
	snprintf(path, sizeof(path), "%s/t2/manifest.json", dir);
	text = slurp(path, NULL);
	p = strstr(text, "\"events\": 1000");
	assert_non_null(p);
	p[strlen("\"events\": 100")] = '1'; /* 1000 -> 1001 */
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	free(text);
	verify_export("t2", pk, &r);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "verify-export: FAILED: manifest.json: signature check "
	                              "failed"));
	run_free(&r);
	third_party("t2", pk, &r);
	assert_int_not_equal(r.status, 0);
	assert_non_null(strstr(r.err, "FAILED: manifest.json: signature does not verify"));
	run_free(&r);

	/* an intact export checked against another key fails too */
	export("t3", pk, NULL);
	memset(other, 'a', 64);
	other[64] = 0;
	verify_export("t3", other, &r);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "signature check failed"));
	run_free(&r);
}

static void a_removed_event_line_is_detected(void **state)
{
	char pk[65], path[4200], *text, *a, *b;
	struct run r;
	FILE *f;

	export("t4", pk, NULL);
	snprintf(path, sizeof(path), "%s/t4/events-000001.jsonl", dir);
	text = slurp(path, NULL);
	a = strchr(text, '\n') + 1; /* drop the second line */
	b = strchr(a, '\n') + 1;
	memmove(a, b, strlen(b) + 1);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	free(text);
	verify_export("t4", pk, &r);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "events-000001.jsonl"));
	run_free(&r);
}

static void export_refuses_a_folder_that_is_not_empty(void **state)
{
	char out[4200];
	struct run r;

	snprintf(out, sizeof(out), "%s/full", dir); /* made by the first test */
	run_mmo(&r, "audit", "export", "--data", dir, "--out", out, "--quiet", NULL);
	assert_int_equal(r.status, 1);
	assert_int_equal(run_lines(r.err), 1);
	assert_non_null(strstr(r.err, "is not empty"));
	run_free(&r);
}

static void the_docs_show_the_tested_script(void **state)
{
	char *script = slurp(AUDIT_CHECK_PY, NULL), *doc = slurp(AUDIT_DOC, NULL);

	assert_non_null(script);
	assert_non_null(doc);
	if (!strstr(doc, script))
		fail_msg("docs/audit.md must contain tests/audit/check_export.py verbatim");
	free(script);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(export_then_verify_export),
	    cmocka_unit_test(a_csv_range_export_with_a_given_key),
	    cmocka_unit_test(a_time_window_export),
	    cmocka_unit_test(the_third_party_check_passes_on_a_good_export),
	    cmocka_unit_test(one_edited_byte_in_an_events_file_is_named),
	    cmocka_unit_test(an_edited_manifest_fails_the_signature),
	    cmocka_unit_test(a_removed_event_line_is_detected),
	    cmocka_unit_test(export_refuses_a_folder_that_is_not_empty),
	    cmocka_unit_test(the_docs_show_the_tested_script),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
