/* audit.h - the auditors' view of the log: query (paged), verify, export,
 * verify-export, report, and the JSON and CSV forms of a record
 * (docs/audit.md). No argv here: `mmo audit` (tools/cli/cmd_audit.c) and the
 * gateway's GET /api/events are the callers.
 *
 * Errors are mmo_err codes (schemas/mmo_err.h). Functions that can fail for
 * a reason worth a sentence take msg/cap: on failure they write one line
 * (no "mmo <cmd>:" prefix, no newline) there; msg may be NULL. */
#ifndef MMO_AUDIT_H
#define MMO_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log/evlog.h"

/* Progress of a long pass: done of total events. */
typedef void audit_progress_fn(uint64_t done, uint64_t total, void *arg);

/* Times: flags and filters take what mmo_time_parse (schemas/mmo_time.h)
 * takes, RFC 3339 or epoch milliseconds; records show mmo_time_format. */

/* ------------------------------------------------------------ records */

/* What audit_record_json adds to mmo_event_to_json (whose "priority" is
 * the record header's, and which always gains "hash", lowercase hex). */
#define AUDIT_JSON_TIME   0x1u /* "time": RFC 3339 of ts */
#define AUDIT_JSON_RECORD 0x2u /* "record": base64 of the bytes the chain hashes */

/* The JSON of one record. rec is borrowed for the call. On success *out is
 * the caller's (json_decref) and, if ev_out is not NULL, *ev_out the decoded
 * event (caller frees with mmo_event_free). MMO_OK, MMO_EMALFORMED (the
 * record does not decode), MMO_ENOMEM. */
int audit_record_json(const struct evlog_rec *rec, unsigned flags, json_t **out,
                      Mmo__Event **ev_out);

/* The CSV form: a header line (no newline) and one row per record, RFC 4180
 * quoting; body is the compact JSON of the body fields. obj is a record's
 * JSON (AUDIT_JSON_TIME, and AUDIT_JSON_RECORD if with_record: then the row
 * gains a "record" column, the header a ",record"). */
extern const char audit_csv_header[];
void audit_csv_row(FILE *f, json_t *obj, bool with_record);

/* The table form (`mmo audit query --format table`): a header line and one
 * line per record's JSON (AUDIT_JSON_TIME). */
void audit_table_header(FILE *f);
void audit_table_row(FILE *f, json_t *obj);

/* ------------------------------------------------------------ query */

/* The events a query matches: all of the set filters. Strings are
 * borrowed for the call. type is a type or a prefix ending in '.'. */
struct audit_filter {
	const char *player, *type, *region; /* NULL: any */
	uint64_t from_seq, to_seq;          /* 0: unbounded */
	bool since_set, until_set;
	int64_t since_us, until_us; /* since inclusive, until exclusive */
};

/* Is s a valid type filter: 1..64 of [a-z0-9._-]? */
bool audit_type_filter_valid(const char *s);

/* One row of a page: rec is borrowed until the callback returns (it points
 * into the log's map). Return MMO_OK to go on, anything else stops the
 * page with that error. Set *skip to leave the row out: it does not count
 * against the limit. */
typedef int audit_row_fn(void *arg, const struct evlog_rec *rec, bool *skip);

/* Where a page ended and how it was read. */
struct audit_page {
	uint64_t rows;     /* rows kept */
	uint64_t next_seq; /* the from_seq of the next page */
	bool more;         /* there is a next page */
	bool explained;    /* the fields below are set (false: nothing to read) */
	enum evlog_query_driver driver;
	uint64_t candidates, scanned;
	uint64_t stop_seq; /* on failure: the seq reading stopped near, 0 if the
	                      query did not open */
};

/* Read one page of the events matching f from seq max(from_seq,
 * f->from_seq) on, at most limit rows (0: no limit), in seq order, calling
 * row for each. *page is written on success and, for stop_seq, on failure.
 * MMO_OK; MMO_EINVAL (a bad filter); the callback's error; the log's error
 * (damage: run verify). */
int audit_query_page(evlog *log, const struct audit_filter *f, uint64_t from_seq, uint64_t limit,
                     audit_row_fn *row, void *arg, struct audit_page *page);

/* The same page as a JSON array of audit_record_json(flags) objects, into
 * *events (the caller's, on success only). With AUDIT_SKIP_UNDECODABLE a
 * record that does not decode is left out; without, it fails the page
 * (MMO_EMALFORMED, page->stop_seq its seq). */
#define AUDIT_SKIP_UNDECODABLE 0x100u
int audit_query_json(evlog *log, const struct audit_filter *f, uint64_t from_seq, uint64_t limit,
                     unsigned flags, json_t **events, struct audit_page *page);

/* ------------------------------------------------------------ verify */

/* Open DIR/log read-only (DIR is the data folder). MMO_ENOTFOUND if there
 * is no log there; else evlog_open's error. *out is the caller's
 * (evlog_close). */
int audit_open_log(const char *data, evlog **out, char *msg, size_t cap);

/* Check seq from..to (to 0: the head) as evlog_verify does: the chain from
 * anchor (NULL: the stored predecessor), no seq missing, and, if indexes,
 * the ids map and every index. MMO_OK, MMO_ECORRUPT (res says where),
 * MMO_EINVAL (from past the head), else the log's error. */
int audit_verify(evlog *log, uint64_t from, uint64_t to, const uint8_t *anchor, bool indexes,
                 audit_progress_fn *progress, void *arg, struct evlog_verify_result *res);

/* ------------------------------------------------------------ export */

#define AUDIT_EXPORT_CHUNK_DEFAULT 1000000
#define AUDIT_PUBKEY_LEN           32

struct audit_export_opts {
	const char *out;           /* a new or empty folder */
	bool csv;                  /* events-*.csv rather than .jsonl */
	uint64_t chunk;            /* events per file, >= 1 */
	uint64_t from_seq, to_seq; /* 0: the first, the head */
	bool since_set, until_set;
	int64_t since_us, until_us;
	/* The signing key: keyfile (64 hex digits, an Ed25519 seed) or, when
	 * NULL, DATA/audit_ed25519.key, created with mode 0600 on first use (a
	 * note on stderr says so; a warning when the file is readable by
	 * others). */
	const char *keyfile, *data;
	audit_progress_fn *progress;
	void *progress_arg;
};

struct audit_export_result {
	uint64_t events, from_seq, to_seq, files;
	uint8_t pk[AUDIT_PUBKEY_LEN]; /* the signing key's public half */
};

/* Write the export (docs/audit.md): files, manifest.json (signed),
 * SHA256SUMS, public_key.hex, checking the chain on the way. MMO_OK;
 * MMO_EINVAL (from_seq past the head); MMO_ENOTFOUND (nothing to export);
 * MMO_ECORRUPT (the log is damaged); MMO_EMALFORMED (a bad key file);
 * MMO_EIO; MMO_ENOMEM. */
int audit_export(evlog *log, const struct audit_export_opts *o, struct audit_export_result *res,
                 char *msg, size_t cap);

/* Check an export offline against the exporter's public key: signature,
 * file hashes, chain, records, counts. MMO_OK and *events (may be NULL),
 * MMO_ECORRUPT (altered: msg says what), MMO_EIO, MMO_ENOMEM. */
int audit_verify_export(const char *dir, const uint8_t pk[AUDIT_PUBKEY_LEN],
                        struct audit_export_result *res, char *msg, size_t cap);

/* ------------------------------------------------------------ report */

struct audit_report_opts {
	const char *out;             /* the HTML file (written through OUT.tmp) */
	const char *data;            /* shown in the page */
	struct audit_filter range;   /* seq and time bounds only */
	size_t top;                  /* players shown */
	audit_progress_fn *progress; /* the pass over the range (may be NULL) */
	void *progress_arg;
	audit_progress_fn *verify_progress; /* then the verify of it (may be NULL) */
	void *verify_progress_arg;
};

struct audit_report_result {
	uint64_t events, from_seq, to_seq;
	int chain; /* MMO_OK intact, MMO_ECORRUPT damaged, MMO_ENOTFOUND not
	              checked (no events), else unchecked (the verify's error) */
};

/* Write the HTML report of a range. The chain's state is in the page and in
 * res->chain, not in the return. MMO_OK, MMO_EMALFORMED (an event does not
 * decode), MMO_EIO, MMO_ENOMEM, else the log's error. */
int audit_report(evlog *log, const struct audit_report_opts *o, struct audit_report_result *res,
                 char *msg, size_t cap);

#endif
