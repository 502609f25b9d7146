/* gen.h - a deterministic event log for the audit tests. */
#ifndef MMO_AUDIT_GEN_H
#define MMO_AUDIT_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_BATCH   10                 /* events per append: they share a ts */
#define GEN_BASE_US 1767225600000000LL /* 2026-01-01T00:00:00Z */
#define GEN_DAY_US  (86400LL * 1000000LL)

/* What was appended, as the generator knows it (the test's truth). */
struct gen_ev {
	uint64_t seq;
	int64_t ts;
	const char *type;
	char player[8]; /* "" when none */
	char region[8];
	char result[12]; /* combat.result only */
};

/* Append n events to a new log in dir (DIR/log is created), spread evenly
 * over `days` days from GEN_BASE_US, in batches of GEN_BATCH. truth (may be
 * NULL) receives n entries. 0 on success. */
int gen_log(const char *data_dir, size_t n, int days, struct gen_ev *truth);

#endif
