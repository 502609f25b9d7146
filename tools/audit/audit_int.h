/* audit_int.h - what the `mmo audit` subcommands share (audit.c,
 * audit_export.c, audit_report.c). Not a public header. */
#ifndef MMO_AUDIT_INT_H
#define MMO_AUDIT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log/evlog.h"

#define AUDIT_PROGRESS_EVERY (64 * 1024)

/* Progress lines on stderr: "<what>: done/total events (P%) R events/s eta Ss". */
struct audit_progress {
	const char *what;
	int64_t t0;
	bool tty;
	bool quiet;
};

void audit_progress_init(struct audit_progress *p, const char *what, bool quiet);
void audit_progress_show(uint64_t done, uint64_t total, void *arg);
void audit_progress_end(struct audit_progress *p);

/* Option parsing helpers: each prints one line (mmo <cmd>: ...) and returns
 * false on a bad value. */
bool audit_arg_seq(const char *cmd, const char *opt, const char *s, uint64_t *out);
bool audit_arg_time(const char *cmd, const char *opt, const char *s, int64_t *out_us);
/* The one line for an unknown option or a missing value (getopt with opterr=0
 * and an optstring starting with ':'); returns EXIT_USAGE. */
int audit_bad_option(const char *cmd, int c, char **argv);

/* Parse RFC 3339 ("2026-01-02T03:04:05.123Z", "...+02:00", or a date
 * "2026-01-02" meaning its midnight UTC) or epoch milliseconds (digits).
 * true on success. */
bool audit_parse_time(const char *s, int64_t *us);

/* Format ts (µs) as RFC 3339 UTC with microseconds into buf (>= 32 bytes). */
void audit_fmt_time(int64_t us, char *buf, size_t cap);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void audit_hex(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex digits; false otherwise. */
bool audit_unhex(const char *s, uint8_t *out, size_t n);

/* Open DATA/log read-only; on failure prints one line and returns false. */
bool audit_open_log(const char *cmd, const char *data, evlog **out);

/* The JSON of one record: mmo_event_to_json plus "priority" from the record
 * header, "time" (RFC 3339), "hash" (hex), and, if with_record, "record"
 * (base64 of the stored bytes after the hash: what the chain hashes). The
 * caller owns the result. *ev_out (may be NULL) receives the decoded event
 * (caller frees with mmo_event_free). MMO_OK, MMO_EMALFORMED, MMO_ENOMEM. */
int audit_rec_json(const struct evlog_rec *rec, bool with_record, json_t **out,
                   Mmo__Event **ev_out);

/* The columns of the CSV form of an event, and one row. Rows use RFC 4180
 * quoting; body is the compact JSON of the body fields. */
extern const char audit_csv_header[];
void audit_csv_row(FILE *f, json_t *obj, bool with_record);
/* Write s quoted for CSV when needed. */
void audit_csv_field(FILE *f, const char *s);

/* Subcommands in their own files. */
int audit_export(int argc, char **argv);
int audit_verify_export(int argc, char **argv);
int audit_report(int argc, char **argv);

#endif
