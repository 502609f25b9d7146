/* audit_report.c - the auditors' report: one self-contained HTML page.
 *
 * One pass over a seq range of the log gathers: events per type per UTC day
 * and logins per day (inline SVG bar charts), top players by activity,
 * combat outcomes, security events by kind and by source, operator actions,
 * rule refusals; then the chain of the range is verified. No scripts, no
 * external resources: the page opens anywhere, offline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_time.h"
#include "schemas/mmo_util.h"

#define DAY_US    (86400LL * 1000000LL)
#define DAYS_MAX  3660 /* days kept in the charts (ten years) */
#define ADMIN_MAX 100  /* operator actions listed (the latest) */

/* ------------------------------------------------------------ a string counter */

struct counter_ent {
	char *key;
	uint64_t n;
};

struct counter {
	struct counter_ent *e;
	size_t cap, used;
};

static bool counter_grow(struct counter *c)
{
	size_t ncap = c->cap ? c->cap * 2 : 256;
	struct counter_ent *ne = calloc(ncap, sizeof(*ne));

	if (!ne)
		return false;
	for (size_t i = 0; i < c->cap; i++) {
		size_t j;

		if (!c->e[i].key)
			continue;
		for (j = mmo_fnv1a_str(c->e[i].key) & (ncap - 1); ne[j].key;
		     j = (j + 1) & (ncap - 1))
			;
		ne[j] = c->e[i];
	}
	free(c->e);
	c->e = ne;
	c->cap = ncap;
	return true;
}

static bool counter_add(struct counter *c, const char *key, uint64_t n)
{
	size_t j;

	if ((c->used + 1) * 4 > c->cap * 3 && !counter_grow(c))
		return false;
	for (j = mmo_fnv1a_str(key) & (c->cap - 1); c->e[j].key; j = (j + 1) & (c->cap - 1)) {
		if (!strcmp(c->e[j].key, key)) {
			c->e[j].n += n;
			return true;
		}
	}
	c->e[j].key = strdup(key);
	if (!c->e[j].key)
		return false;
	c->e[j].n = n;
	c->used++;
	return true;
}

static int by_count(const void *a, const void *b)
{
	const struct counter_ent *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The entries sorted by count (descending), then key. The caller frees the
 * array (not the keys, which the counter owns). */
static struct counter_ent *counter_sorted(const struct counter *c)
{
	struct counter_ent *v = malloc((c->used ? c->used : 1) * sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < c->cap; i++) {
		if (c->e[i].key)
			v[n++] = c->e[i];
	}
	qsort(v, n, sizeof(*v), by_count);
	return v;
}

static void counter_free(struct counter *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->e[i].key);
	free(c->e);
}

/* ------------------------------------------------------------ gathering */

struct day {
	int64_t day;        /* days since the epoch (UTC) */
	uint64_t *per_type; /* ntypes + 1 ("other") */
	uint64_t logins;
};

struct admin_row {
	uint64_t seq;
	int64_t ts;
	char command[MMO_TEXT_MAX + 1], actor[MMO_ID_MAX + 1], detail[MMO_TEXT_MAX + 1];
};

struct report {
	size_t ntypes;
	uint64_t *type_total;
	struct day *days;
	size_t ndays, days_cap;
	bool days_truncated;
	struct counter players, outcomes, sec_kinds, sec_events, sec_sources, rejects;
	uint64_t damage, events, sec_total;
	int64_t first_ts, last_ts;
	struct admin_row admin[ADMIN_MAX];
	uint64_t nadmin;
};

static size_t type_index(const struct report *r, const char *type)
{
	for (size_t i = 0; i < r->ntypes; i++) {
		if (!strcmp(mmo_type_at(i)->name, type))
			return i;
	}
	return r->ntypes;
}

static struct day *day_for(struct report *r, int64_t ts)
{
	int64_t d = ts / DAY_US;

	if (r->ndays && r->days[r->ndays - 1].day == d)
		return &r->days[r->ndays - 1];
	if (r->ndays && d < r->days[r->ndays - 1].day)
		return NULL; /* ts never goes backwards in an intact log: skip */
	for (;;) {
		struct day *x;
		int64_t next = r->ndays && d - r->days[r->ndays - 1].day < 400
		                   ? r->days[r->ndays - 1].day + 1
		                   : d;

		if (r->ndays == DAYS_MAX) {
			r->days_truncated = true;
			return NULL;
		}
		if (r->ndays == r->days_cap) {
			size_t ncap = r->days_cap ? r->days_cap * 2 : 64;
			struct day *nd = realloc(r->days, ncap * sizeof(*nd));

			if (!nd)
				return NULL;
			r->days = nd;
			r->days_cap = ncap;
		}
		x = &r->days[r->ndays];
		x->day = next;
		x->logins = 0;
		x->per_type = calloc(r->ntypes + 1, sizeof(uint64_t));
		if (!x->per_type)
			return NULL;
		r->ndays++;
		if (next == d)
			return x;
	}
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static bool gather(struct report *r, const struct evlog_rec *rec, const Mmo__Event *ev)
{
	size_t ti = type_index(r, ev->type);
	struct day *d = day_for(r, rec->ts);
	bool ok = true;

	if (!r->events)
		r->first_ts = rec->ts;
	r->last_ts = rec->ts;
	r->events++;
	r->type_total[ti]++;
	if (d) {
		d->per_type[ti]++;
		if (!strcmp(ev->type, "player.login"))
			d->logins++;
	}
	if (*ev->player_id)
		ok = counter_add(&r->players, ev->player_id, 1);
	switch (ev->body_case) {
	case MMO__EVENT__BODY_COMBAT_RESULT: {
		const char *res = ev->combat_result->result;

		ok = ok && counter_add(&r->outcomes, res && *res ? res : "(none)", 1);
		r->damage += ev->combat_result->damage;
		break;
	}
	case MMO__EVENT__BODY_SECURITY: {
		const Mmo__SecurityEvent *s = ev->security;
		uint64_t n = s->count ? s->count : 1;
		char key[MMO_ID_MAX * 2 + 8];

		snprintf(key, sizeof(key), "%s|%s", ev->type, *s->source ? s->source : "-");
		ok = ok && counter_add(&r->sec_kinds, ev->type, n) &&
		     counter_add(&r->sec_events, ev->type, 1) &&
		     counter_add(&r->sec_sources, key, n);
		r->sec_total += n;
		break;
	}
	case MMO__EVENT__BODY_ADMIN_ACTION: {
		struct admin_row *a = &r->admin[r->nadmin % ADMIN_MAX];

		a->seq = rec->seq;
		a->ts = rec->ts;
		copy(a->command, sizeof(a->command), ev->admin_action->command);
		copy(a->actor, sizeof(a->actor), ev->admin_action->actor);
		copy(a->detail, sizeof(a->detail), ev->admin_action->detail);
		r->nadmin++;
		break;
	}
	case MMO__EVENT__BODY_WORLD_REJECT:
		ok = ok && counter_add(
		               &r->rejects,
		               *ev->world_reject->reason ? ev->world_reject->reason : "(none)", 1);
		break;
	default: break;
	}
	return ok;
}

/* ------------------------------------------------------------ HTML */

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
                                      "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

static const char *type_name(const struct report *r, size_t i)
{
	return i < r->ntypes ? mmo_type_at(i)->name : "other";
}

static void day_label(int64_t day, char *buf, size_t cap)
{
	char t[40];

	mmo_time_format(day * DAY_US, t, sizeof(t));
	snprintf(buf, cap, "%.10s", t);
}

/* A bar chart: one bar per day, stacked by series. value(r, day, s). */
typedef uint64_t value_fn(const struct report *r, const struct day *d, size_t s);

static uint64_t v_type(const struct report *r, const struct day *d, size_t s)
{
	return d->per_type[s];
}

static uint64_t v_login(const struct report *r, const struct day *d, size_t s)
{
	return d->logins;
}

static void chart(FILE *f, const struct report *r, const char *id, const char *title,
                  size_t nseries, value_fn *val, const bool *shown)
{
	const int left = 56, top = 12, h = 200, bottom = 40;
	int bw = r->ndays ? 800 / (int)r->ndays : 40, gap, every, width;
	uint64_t max = 1;

	if (bw > 40)
		bw = 40;
	if (bw < 3)
		bw = 3;
	gap = bw >= 6 ? 2 : 0;
	every = 70 / bw + 1;
	width = left + (int)r->ndays * bw + 20;
	if (width < 320)
		width = 320;
	for (size_t i = 0; i < r->ndays; i++) {
		uint64_t sum = 0;

		for (size_t s = 0; s < nseries; s++)
			sum += shown[s] ? val(r, &r->days[i], s) : 0;
		if (sum > max)
			max = sum;
	}
	fprintf(f,
	        "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
	        id, width, top + h + bottom, width, top + h + bottom);
	esc(f, title);
	fprintf(f, "\">\n");
	for (int k = 0; k <= 2; k++) {
		int y = top + h - h * k / 2;

		fprintf(
		    f,
		    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>"
		    "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%llu</text>\n",
		    left, y, width - 10, y, left - 4, y + 4,
		    (unsigned long long)(max * (uint64_t)k / 2));
	}
	for (size_t i = 0; i < r->ndays; i++) {
		const struct day *d = &r->days[i];
		int x = left + (int)i * bw;
		double y = top + h;
		char date[16];

		day_label(d->day, date, sizeof(date));
		for (size_t s = 0; s < nseries; s++) {
			uint64_t v = shown[s] ? val(r, d, s) : 0;
			double bh = (double)h * (double)v / (double)max;

			if (!v)
				continue;
			y -= bh;
			fprintf(
			    f,
			    "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\">"
			    "<title>%s %s: %llu</title></rect>\n",
			    x, y, bw - gap, bh, palette[s % NPALETTE], date,
			    nseries > 1 ? type_name(r, s) : "logins", (unsigned long long)v);
		}
		if (i % (size_t)every == 0)
			fprintf(f,
			        "<text x=\"%d\" y=\"%d\" font-size=\"10\" "
			        "transform=\"rotate(30 %d %d)\">%s</text>\n",
			        x, top + h + 14, x, top + h + 14, date);
	}
	fprintf(f, "</svg>\n");
	if (nseries > 1) {
		fprintf(f, "<p class=\"legend\">");
		for (size_t s = 0; s < nseries; s++) {
			if (shown[s])
				fprintf(f, "<span><i style=\"background:%s\"></i>%s</span> ",
				        palette[s % NPALETTE], type_name(r, s));
		}
		fprintf(f, "</p>\n");
	}
}

static void table_counts(FILE *f, const char *id, const char *k1, const char *k2,
                         const struct counter *c, size_t top)
{
	struct counter_ent *v = counter_sorted(c);
	size_t n = c->used < top ? c->used : top;

	fprintf(f, "<table id=\"%s\"><tr><th>%s</th><th>%s</th></tr>\n", id, k1, k2);
	for (size_t i = 0; v && i < n; i++) {
		fprintf(f, "<tr><td>");
		esc(f, v[i].key);
		fprintf(f, "</td><td>%llu</td></tr>\n", (unsigned long long)v[i].n);
	}
	if (!c->used)
		fprintf(f, "<tr><td colspan=\"2\">none</td></tr>\n");
	fprintf(f, "</table>\n");
	free(v);
}

struct chain_status {
	int err;
	struct evlog_verify_result res;
	uint64_t head;
	uint8_t head_hash[EVLOG_HASH_LEN];
};

static void write_html(FILE *f, const struct report *r, const char *data, uint64_t from,
                       uint64_t to, const struct chain_status *cs, size_t top)
{
	bool *shown = calloc(r->ntypes + 1, sizeof(bool));
	bool one = true;
	char t0[40], t1[40], now[40], hh[65];

	mmo_time_format(r->first_ts, t0, sizeof(t0));
	mmo_time_format(r->last_ts, t1, sizeof(t1));
	mmo_time_format(mmo_now_us(), now, sizeof(now));
	audit_hex(cs->head_hash, EVLOG_HASH_LEN, hh);
	fprintf(
	    f,
	    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	    "<title>mmo audit report, seq %llu..%llu</title>\n<style>\n"
	    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\n"
	    "h1{margin-bottom:0}.meta{color:#555}section{margin:1.5em 0}\n"
	    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
	    "padding:.2em .6em;text-align:left}th{background:#f3f3f3}\n"
	    ".ok{color:#17692c;font-weight:bold}.bad{color:#b00020;font-weight:bold}\n"
	    ".legend span{margin-right:1em;white-space:nowrap}.legend i{display:inline-block;"
	    "width:.8em;height:.8em;margin-right:.3em}\n.chart{display:block;overflow:visible}\n"
	    "</style>\n</head>\n<body>\n<h1>mmo audit report</h1>\n<p class=\"meta\">Log ",
	    (unsigned long long)from, (unsigned long long)to);
	esc(f, data);
	fprintf(f,
	        "/log, seq %llu..%llu: <span id=\"total\">%llu</span> events from %s to %s. "
	        "Generated %s by mmo %s.</p>\n",
	        (unsigned long long)from, (unsigned long long)to, (unsigned long long)r->events,
	        r->events ? t0 : "-", r->events ? t1 : "-", now, MMO_VERSION);

	fprintf(f, "<section id=\"chain\">\n<h2>Chain status</h2>\n");
	if (cs->err == MMO_OK)
		fprintf(f,
		        "<p class=\"ok\">chain: intact, %llu events checked (seq %llu..%llu), "
		        "indexes consistent</p>\n",
		        (unsigned long long)cs->res.checked, (unsigned long long)from,
		        (unsigned long long)to);
	else if (cs->err == MMO_ECORRUPT) {
		fprintf(f, "<p class=\"bad\">chain: DAMAGED at seq %llu: ",
		        (unsigned long long)cs->res.bad_seq);
		esc(f, cs->res.what);
		fprintf(f, "</p>\n");
	} else
		fprintf(f, "<p class=\"bad\">chain: not checked: %s</p>\n", mmo_errdesc(cs->err));
	fprintf(f, "<p>Head of the log: seq %llu, hash <code>%s</code>.</p>\n</section>\n",
	        (unsigned long long)cs->head, hh);

	fprintf(f, "<section id=\"types\">\n<h2>Events by type</h2>\n<table>"
	           "<tr><th>type</th><th>events</th></tr>\n");
	for (size_t i = 0; i <= r->ntypes; i++) {
		shown[i] = r->type_total[i] > 0;
		if (shown[i])
			fprintf(f, "<tr><td>%s</td><td>%llu</td></tr>\n", type_name(r, i),
			        (unsigned long long)r->type_total[i]);
	}
	fprintf(f, "</table>\n</section>\n");

	fprintf(f, "<section id=\"per-day\">\n<h2>Events per type per day (UTC)</h2>\n");
	chart(f, r, "chart-types", "events per type per day", r->ntypes + 1, v_type, shown);
	if (r->days_truncated)
		fprintf(f, "<p>Only the first %d days are charted.</p>\n", DAYS_MAX);
	fprintf(f, "</section>\n<section id=\"logins\">\n<h2>Logins per day (UTC)</h2>\n");
	chart(f, r, "chart-logins", "logins per day", 1, v_login, &one);
	fprintf(f, "<table id=\"logins-table\"><tr><th>day</th><th>logins</th></tr>\n");
	for (size_t i = 0; i < r->ndays; i++) {
		char date[16];

		if (!r->days[i].logins)
			continue;
		day_label(r->days[i].day, date, sizeof(date));
		fprintf(f, "<tr><td>%s</td><td>%llu</td></tr>\n", date,
		        (unsigned long long)r->days[i].logins);
	}
	fprintf(f, "</table>\n</section>\n");

	fprintf(f, "<section id=\"players\">\n<h2>Top players by activity</h2>\n");
	table_counts(f, "players-table", "player", "events", &r->players, top);
	fprintf(f, "<p>%zu players active in the range.</p>\n</section>\n", r->players.used);

	fprintf(f, "<section id=\"combat\">\n<h2>Combat outcomes</h2>\n");
	table_counts(f, "combat-table", "result", "count", &r->outcomes, 100);
	fprintf(f, "<p>Total damage dealt: <span id=\"damage\">%llu</span>.</p>\n</section>\n",
	        (unsigned long long)r->damage);

	fprintf(f, "<section id=\"security\">\n<h2>Security events</h2>\n"
	           "<p>Failed logins, refused or expired tokens, forbidden access and rate "
	           "limiting, as logged (aggregated per source and window).</p>\n");
	fprintf(f, "<p>Total occurrences: <span id=\"security-total\">%llu</span>.</p>\n",
	        (unsigned long long)r->sec_total);
	table_counts(f, "security-events", "kind", "events", &r->sec_events, 100);
	table_counts(f, "security-kinds", "kind", "occurrences", &r->sec_kinds, 100);
	table_counts(f, "security-sources", "kind|source", "occurrences", &r->sec_sources, top);
	fprintf(f, "</section>\n");

	fprintf(f, "<section id=\"rejects\">\n<h2>Refused intents (world.reject)</h2>\n");
	table_counts(f, "rejects-table", "reason", "count", &r->rejects, 100);
	fprintf(f, "</section>\n");

	fprintf(f,
	        "<section id=\"admin\">\n<h2>Operator actions</h2>\n<p>%llu in the range%s.</p>\n"
	        "<table id=\"admin-table\"><tr><th>seq</th><th>time</th><th>command</th>"
	        "<th>actor</th><th>detail</th></tr>\n",
	        (unsigned long long)r->nadmin,
	        r->nadmin > ADMIN_MAX ? " (the latest 100 shown)" : "");
	for (uint64_t i = r->nadmin > ADMIN_MAX ? r->nadmin - ADMIN_MAX : 0; i < r->nadmin; i++) {
		const struct admin_row *a = &r->admin[i % ADMIN_MAX];
		char when[40];

		mmo_time_format(a->ts, when, sizeof(when));
		fprintf(f, "<tr><td>%llu</td><td>%s</td><td>", (unsigned long long)a->seq, when);
		esc(f, a->command);
		fprintf(f, "</td><td>");
		esc(f, a->actor);
		fprintf(f, "</td><td>");
		esc(f, a->detail);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n</section>\n</body>\n</html>\n");
	free(shown);
}

/* ------------------------------------------------------------ command */

int audit_report(evlog *log, const struct audit_report_opts *o, struct audit_report_result *res,
                 char *msg, size_t cap)
{
	struct evlog_query q = {
	    .from_seq = o->range.from_seq,
	    .to_seq = o->range.to_seq,
	    .since_set = o->range.since_set,
	    .until_set = o->range.until_set,
	    .since_us = o->range.since_us,
	    .until_us = o->range.until_us,
	};
	struct report r = {0};
	struct chain_status cs = {0};
	uint64_t from, to, span, done = 0;
	evlog_query_it *it = NULL;
	struct evlog_rec rec;
	FILE *f = NULL;
	char tmp[4200];
	int err;

	r.ntypes = mmo_type_count();
	r.type_total = calloc(r.ntypes + 1, sizeof(uint64_t));
	if (!r.type_total) {
		err = audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
		goto out;
	}
	err = evlog_query_open(log, &q, &it);
	if (err) {
		audit_msg(err, msg, cap, "cannot read the log: %s", mmo_errdesc(err));
		goto out;
	}
	from = q.from_seq ? q.from_seq : 1;
	to = q.to_seq && q.to_seq < evlog_query_head(it) ? q.to_seq : evlog_query_head(it);
	span = to >= from ? to - from + 1 : 0;
	while ((err = evlog_query_next(it, &rec)) == MMO_OK) {
		Mmo__Event *ev;

		if (done == 0)
			from = rec.seq;
		to = rec.seq;
		err = evlog_rec_decode(&rec, &ev);
		if (err) {
			audit_msg(err, msg, cap,
			          "event at seq %llu does not decode (run mmo audit verify)",
			          (unsigned long long)rec.seq);
			goto out;
		}
		if (!gather(&r, &rec, ev)) {
			mmo_event_free(ev);
			err = audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
			goto out;
		}
		mmo_event_free(ev);
		if (++done % AUDIT_PROGRESS_EVERY == 0 && o->progress)
			o->progress(done, span, o->progress_arg);
	}
	if (err != MMO_ENOTFOUND) {
		audit_msg(err, msg, cap, "log damaged near seq %llu: %s (run mmo audit verify)",
		          (unsigned long long)rec.seq, mmo_errdesc(err));
		goto out;
	}
	evlog_query_close(it);
	it = NULL;

	evlog_head(log, &cs.head, cs.head_hash);
	if (done)
		cs.err = evlog_verify(log, from, to, NULL, true, o->verify_progress,
		                      o->verify_progress_arg, &cs.res);

	snprintf(tmp, sizeof(tmp), "%s.tmp", o->out);
	f = fopen(tmp, "w");
	if (!f) {
		err = audit_msg(MMO_EIO, msg, cap, "cannot write %s", tmp);
		goto out;
	}
	write_html(f, &r, o->data, from, to, &cs, o->top);
	if (fclose(f) != 0 || rename(tmp, o->out) != 0) {
		f = NULL;
		err = audit_msg(MMO_EIO, msg, cap, "cannot write %s", o->out);
		remove(tmp);
		goto out;
	}
	f = NULL;
	res->events = done;
	res->from_seq = from;
	res->to_seq = to;
	res->chain = done ? cs.err : MMO_ENOTFOUND;
	err = MMO_OK;
out:
	if (f)
		fclose(f);
	evlog_query_close(it);
	for (size_t i = 0; i < r.ndays; i++)
		free(r.days[i].per_type);
	free(r.days);
	free(r.type_total);
	counter_free(&r.players);
	counter_free(&r.outcomes);
	counter_free(&r.sec_kinds);
	counter_free(&r.sec_events);
	counter_free(&r.sec_sources);
	counter_free(&r.rejects);
	return err;
}
