/* metrics.c - the log's counters in the Prometheus text format (the
 * log's part of /metrics). */
#include <stdio.h>

#include "log/evlog.h"

size_t evlog_stats_format(const struct evlog_stats *st, char *buf, size_t cap)
{
	size_t n = 0;
	uint64_t cum = 0;

#define EMIT(...)                                                                                  \
	do {                                                                                       \
		int w_ = snprintf(buf + n, cap > n ? cap - n : 0, __VA_ARGS__);                    \
		if (w_ > 0)                                                                        \
			n = n + (size_t)w_ < cap ? n + (size_t)w_ : (cap ? cap - 1 : 0);           \
	} while (0)

	if (!cap)
		return 0;
	buf[0] = 0;
	EMIT("# TYPE mmo_log_head_seq gauge\nmmo_log_head_seq %llu\n",
	     (unsigned long long)st->head_seq);
	EMIT("# TYPE mmo_log_events_appended_total counter\nmmo_log_events_appended_total %llu\n",
	     (unsigned long long)st->appended);
	EMIT("# TYPE mmo_log_events_duplicate_total counter\nmmo_log_events_duplicate_total %llu\n",
	     (unsigned long long)st->duplicates);
	EMIT("# TYPE mmo_log_events_rejected_total counter\nmmo_log_events_rejected_total %llu\n",
	     (unsigned long long)st->rejected);
	EMIT("# TYPE mmo_log_requests_busy_total counter\nmmo_log_requests_busy_total %llu\n",
	     (unsigned long long)st->busy);
	EMIT("# TYPE mmo_log_commit_full_total counter\nmmo_log_commit_full_total %llu\n",
	     (unsigned long long)st->full_errors);
	EMIT("# TYPE mmo_log_reads_total counter\nmmo_log_reads_total %llu\n",
	     (unsigned long long)st->reads);
	EMIT("# TYPE mmo_log_queue_depth gauge\nmmo_log_queue_depth %llu\n",
	     (unsigned long long)st->queue_depth);
	EMIT("# TYPE mmo_log_index_lag_events gauge\nmmo_log_index_lag_events %llu\n",
	     (unsigned long long)(st->head_seq > st->indexed_seq ? st->head_seq - st->indexed_seq
	                                                         : 0));
	EMIT("# TYPE mmo_log_batch_events histogram\n");
	for (unsigned i = 0; i < 12; i++) {
		cum += st->batch_hist[i];
		if (i < 11)
			EMIT("mmo_log_batch_events_bucket{le=\"%llu\"} %llu\n",
			     (unsigned long long)1 << i, (unsigned long long)cum);
		else
			EMIT("mmo_log_batch_events_bucket{le=\"+Inf\"} %llu\n",
			     (unsigned long long)cum);
	}
	EMIT("mmo_log_batch_events_count %llu\n", (unsigned long long)st->batches);
	EMIT("# TYPE mmo_log_commit_seconds histogram\n");
	cum = 0;
	for (unsigned i = 0; i < 12; i++) {
		cum += st->commit_hist[i];
		if (i < 11)
			EMIT("mmo_log_commit_seconds_bucket{le=\"%.6f\"} %llu\n",
			     (double)((uint64_t)1 << (i + 4)) / 1e6, (unsigned long long)cum);
		else
			EMIT("mmo_log_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
			     (unsigned long long)cum);
	}
	EMIT("mmo_log_commit_seconds_sum %.6f\n", (double)st->commit_us_sum / 1e6);
	EMIT("mmo_log_commit_seconds_count %llu\n", (unsigned long long)st->batches);
#undef EMIT
	if (n == cap - 1 && n > 0 && buf[n - 1] != '\n') {
		/* Truncated mid-line: keep whole lines only (or end the one there is). */
		size_t end = n;

		while (end > 0 && buf[end - 1] != '\n')
			end--;
		if (end)
			n = end;
		else
			buf[n - 1] = '\n';
		buf[n] = 0;
	}
	return n;
}
