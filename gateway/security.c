/* security.c - security events, aggregated so a flood cannot flood the log.
 *
 * Each (type, source) pair counts its occurrences over a window
 * (security_window_ms); when the window ends, the housekeeping thread
 * appends one critical event for it: security{kind, source, count,
 * window_start_us, detail = the first few items, e.g. usernames tried}.
 * At most MAX_SOURCES pairs are tracked per window; the rest are counted
 * under source "*". So the log receives at most (MAX_SOURCES + types)
 * events per window whatever the attack rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "schemas/mmo_util.h"

#define MAX_SOURCES 1024

struct agg {
	char type[32];
	char source[64];
	uint32_t count;
	int64_t start_us;   /* wall clock, for the event */
	int64_t start_mono; /* for the window */
	char detail[MMO_TEXT_MAX + 1];
	struct agg *next;
};

struct gw_sec {
	pthread_mutex_t mu;
	struct agg *head;
	size_t n;
};

int gw_sec_new(struct gw_sec **out)
{
	struct gw_sec *s = calloc(1, sizeof(*s));

	if (!s)
		return MMO_ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return MMO_OK;
}

void gw_sec_free(struct gw_sec *s)
{
	if (!s)
		return;
	while (s->head) {
		struct agg *a = s->head;

		s->head = a->next;
		free(a);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void add_item(struct agg *a, const char *item)
{
	size_t len = strlen(a->detail), il;
	const char *p = a->detail;

	if (!item || !*item)
		return;
	il = strlen(item);
	/* Already listed? */
	while ((p = strstr(p, item)) != NULL) {
		if ((p == a->detail || p[-1] == ',') && (p[il] == 0 || p[il] == ','))
			return;
		p++;
	}
	if (len + il + 2 > MMO_TEXT_MAX)
		return;
	if (len)
		a->detail[len++] = ',';
	memcpy(a->detail + len, item, il + 1);
}

void gw_sec_note(gw *g, const char *type, const char *source, const char *item)
{
	struct gw_sec *s = g->sec;
	struct agg *a;
	char src[64];

	snprintf(src, sizeof(src), "%s", source && *source ? source : "unknown");
	pthread_mutex_lock(&s->mu);
	for (a = s->head; a; a = a->next) {
		if (!strcmp(a->type, type) && !strcmp(a->source, src))
			break;
	}
	if (!a && s->n >= MAX_SOURCES) {
		strcpy(src, "*");
		for (a = s->head; a; a = a->next) {
			if (!strcmp(a->type, type) && !strcmp(a->source, src))
				break;
		}
	}
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			goto out;
		snprintf(a->type, sizeof(a->type), "%s", type);
		strcpy(a->source, src);
		a->start_us = mmo_now_us();
		a->start_mono = mmo_mono_us();
		a->next = s->head;
		s->head = a;
		s->n++;
	}
	a->count++;
	add_item(a, item);
out:
	pthread_mutex_unlock(&s->mu);
}

static void emit(gw *g, const struct agg *a)
{
	struct mmo_ev b;
	char eid[MMO_ID_MAX + 1];
	uint64_t seq;

	strcpy(eid, "gw:sec:");
	gw_random_hex(eid + 7, 12);
	if (mmo_ev_init(&b, a->type, eid, NULL, NULL))
		return;
	b.body.security.kind = (char *)(a->type + (strncmp(a->type, "security.", 9) ? 0 : 9));
	b.body.security.source = (char *)a->source;
	b.body.security.count = a->count;
	b.body.security.window_start_us = a->start_us;
	b.body.security.detail = (char *)a->detail;
	if (gw_log_append(g, &b.ev, &seq)) {
		gw_metrics_error(&g->m, GW_F_LOG);
		mmo_logf(MMO_LOG_WARN, "gateway", "%s from %s x%u not logged: log unavailable",
		         a->type, a->source, a->count);
		return;
	}
	atomic_fetch_add(&g->m.security_events, 1);
	mmo_logf(MMO_LOG_WARN, "gateway", "%s from %s x%u (seq %llu)", a->type, a->source, a->count,
	         (unsigned long long)seq);
}

void gw_sec_flush(gw *g, int64_t now_us, bool all)
{
	struct gw_sec *s = g->sec;
	struct agg *done = NULL, **pp;
	int64_t win = (int64_t)g->o.security_window_ms * 1000;

	pthread_mutex_lock(&s->mu);
	pp = &s->head;
	while (*pp) {
		struct agg *a = *pp;

		if (all || now_us - a->start_mono >= win) {
			*pp = a->next;
			a->next = done;
			done = a;
			s->n--;
		} else {
			pp = &a->next;
		}
	}
	pthread_mutex_unlock(&s->mu);
	while (done) {
		struct agg *a = done;

		done = a->next;
		emit(g, a);
		free(a);
	}
}
