/* mmo_prom.c - Prometheus text and latency histograms (see mmo_prom.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "schemas/mmo_prom.h"

const int64_t mmo_hist_bounds_us[MMO_HIST_N - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

void mmo_hist_observe(struct mmo_hist *h, int64_t us)
{
	size_t i;

	if (us < 0)
		us = 0;
	for (i = 0; i < MMO_HIST_N - 1; i++) {
		if (us <= mmo_hist_bounds_us[i])
			break;
	}
	atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

int64_t mmo_hist_quantile(const uint64_t b[MMO_HIST_N], double q)
{
	uint64_t total = 0, acc = 0, want;

	for (size_t i = 0; i < MMO_HIST_N; i++)
		total += b[i];
	if (!total)
		return 0;
	want = (uint64_t)((double)total * q);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < MMO_HIST_N; i++) {
		acc += b[i];
		if (acc >= want)
			return i < MMO_HIST_N - 1 ? mmo_hist_bounds_us[i] : INT64_MAX;
	}
	return INT64_MAX;
}

void mmo_prom_init(struct mmo_prom *p, char *buf, size_t cap)
{
	p->buf = buf;
	p->len = 0;
	p->cap = cap;
	p->truncated = cap == 0;
	if (cap)
		buf[0] = 0;
}

void mmo_prom_printf(struct mmo_prom *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->truncated)
		return;
	va_start(ap, fmt);
	n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= p->cap - p->len) {
		p->buf[p->len] = 0; /* keep whole writes only */
		p->truncated = true;
		return;
	}
	p->len += (size_t)n;
}

void mmo_prom_head(struct mmo_prom *p, const char *name, const char *type, const char *help)
{
	mmo_prom_printf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

void mmo_prom_hist(struct mmo_prom *p, const char *name, const char *labels,
                   const struct mmo_hist *h)
{
	uint64_t acc = 0;
	const char *sep = labels[0] ? "," : "";

	for (size_t i = 0; i < MMO_HIST_N; i++) {
		acc += ld(&h->b[i]);
		if (i < MMO_HIST_N - 1)
			mmo_prom_printf(p, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
			                (double)mmo_hist_bounds_us[i] / 1e6,
			                (unsigned long long)acc);
		else
			mmo_prom_printf(p, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
			                (unsigned long long)acc);
	}
	if (labels[0]) {
		mmo_prom_printf(p, "%s_sum{%s} %.6f\n", name, labels, (double)ld(&h->sum_us) / 1e6);
		mmo_prom_printf(p, "%s_count{%s} %llu\n", name, labels,
		                (unsigned long long)ld(&h->count));
	} else {
		mmo_prom_printf(p, "%s_sum %.6f\n", name, (double)ld(&h->sum_us) / 1e6);
		mmo_prom_printf(p, "%s_count %llu\n", name, (unsigned long long)ld(&h->count));
	}
}
