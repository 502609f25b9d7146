/* metrics.c - the log's counters in the Prometheus text format (the
 * log's part of /metrics), written with the one writer (schemas/mmo_prom.h).
 *
 * The two histograms keep the log's own buckets rather than mmo_hist's
 * latency buckets (250 µs .. 2.5 s): batch sizes are counts of events
 * (1 .. 1024), and a commit takes from 16 µs (no fsync) to tens of ms, so
 * the log counts them in powers of two (log/intake.c). */
#include <stdio.h>

#include "log/evlog.h"
#include "schemas/mmo_prom.h"

static void counter(struct mmo_prom *p, const char *type, const char *name, uint64_t v)
{
	mmo_prom_printf(p, "# TYPE %s %s\n%s %llu\n", name, type, name, (unsigned long long)v);
}

size_t evlog_stats_format(const struct evlog_stats *st, char *buf, size_t cap)
{
	struct mmo_prom p;
	uint64_t cum = 0;

	if (!cap)
		return 0;
	mmo_prom_init(&p, buf, cap);
	counter(&p, "gauge", "mmo_log_head_seq", st->head_seq);
	counter(&p, "counter", "mmo_log_events_appended_total", st->appended);
	counter(&p, "counter", "mmo_log_events_duplicate_total", st->duplicates);
	counter(&p, "counter", "mmo_log_events_rejected_total", st->rejected);
	counter(&p, "counter", "mmo_log_requests_busy_total", st->busy);
	counter(&p, "counter", "mmo_log_commit_full_total", st->full_errors);
	counter(&p, "counter", "mmo_log_reads_total", st->reads);
	counter(&p, "gauge", "mmo_log_queue_depth", st->queue_depth);
	counter(&p, "gauge", "mmo_log_bus_regions", st->bus_regions);
	counter(&p, "counter", "mmo_log_bus_regions_evicted_total", st->bus_regions_evicted);
	counter(&p, "gauge", "mmo_log_index_lag_events",
	        st->head_seq > st->indexed_seq ? st->head_seq - st->indexed_seq : 0);
	mmo_prom_printf(&p, "# TYPE mmo_log_batch_events histogram\n");
	for (unsigned i = 0; i < 12; i++) {
		cum += st->batch_hist[i];
		if (i < 11)
			mmo_prom_printf(&p, "mmo_log_batch_events_bucket{le=\"%llu\"} %llu\n",
			                (unsigned long long)1 << i, (unsigned long long)cum);
		else
			mmo_prom_printf(&p, "mmo_log_batch_events_bucket{le=\"+Inf\"} %llu\n",
			                (unsigned long long)cum);
	}
	mmo_prom_printf(&p, "mmo_log_batch_events_count %llu\n", (unsigned long long)st->batches);
	mmo_prom_printf(&p, "# TYPE mmo_log_commit_seconds histogram\n");
	cum = 0;
	for (unsigned i = 0; i < 12; i++) {
		cum += st->commit_hist[i];
		if (i < 11)
			mmo_prom_printf(&p, "mmo_log_commit_seconds_bucket{le=\"%.6f\"} %llu\n",
			                (double)((uint64_t)1 << (i + 4)) / 1e6,
			                (unsigned long long)cum);
		else
			mmo_prom_printf(&p, "mmo_log_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
			                (unsigned long long)cum);
	}
	mmo_prom_printf(&p, "mmo_log_commit_seconds_sum %.6f\n", (double)st->commit_us_sum / 1e6);
	mmo_prom_printf(&p, "mmo_log_commit_seconds_count %llu\n", (unsigned long long)st->batches);
	if (p.len == 0 && cap > 1) {
		/* Not even the first line fits: as much of it as does, still
		 * ending in a newline (evlog.h). */
		snprintf(buf, cap, "# TYPE mmo_log_head_seq gauge\n");
		buf[cap - 2] = '\n';
		return cap - 1;
	}
	return p.len;
}
