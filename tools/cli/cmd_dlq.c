/* cmd_dlq.c - `mmo dlq list|retry|drop`: the views' dead-letter queue
 * (docs/views.md). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "log/evlog.h"
#include "projector/views/views.h"
#include "schemas/mmo_util.h"

#define PAGE_DEFAULT 50
#define PAGE_MAX     10000

struct common {
	const char *data, *redis, *mongo_uri, *mongo_db, *view;
};

static void dlq_help(FILE *f)
{
	fprintf(f,
	        "usage: mmo dlq list  [--view redis|mongo] [--limit N] [--cursor C] [--format "
	        "text|json]\n"
	        "       mmo dlq retry [--view redis|mongo] [--seq N] [--dry-run]\n"
	        "       mmo dlq drop  [--view redis|mongo] [--seq N] --yes\n"
	        "The views' dead-letter queue (DATA/views/dlq): events a view's store refused\n"
	        "(status dead) and later events of the same players held behind them (parked).\n"
	        "  list   one page of entries in (view, seq) order, then the counts per view and\n"
	        "         error; --cursor takes the `next cursor` a page printed\n"
	        "  retry  apply the entries again, in seq order, each at most once (a retry of an\n"
	        "         event already applied changes nothing); --seq N: that entry and the\n"
	        "         parked ones it alone held; --dry-run: only say what would be tried.\n"
	        "         Exit 1 if any was refused again or the store does not answer\n"
	        "  drop   forget entries for good (their events stay out of the view until a\n"
	        "         rebuild); refuses without --yes\n"
	        "options: --data DIR (default ./data), --redis URL (default\n"
	        "redis://127.0.0.1:6379), --mongo-uri URI, --mongo-db NAME (default mmo); each\n"
	        "also MMO_<OPTION>.\n");
}

static void iso_time(int64_t us, char *buf, size_t cap)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	if (us <= 0 || !gmtime_r(&s, &tm)) {
		snprintf(buf, cap, "-");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000 / 1000));
}

/* The kind of an entry for the counts: "parked", or the first word of the error. */
static void kind_of(const struct views_dlq_entry *e, char *buf, size_t cap)
{
	size_t n = 0;

	if (e->parked) {
		snprintf(buf, cap, "parked");
		return;
	}
	while (e->error[n] && e->error[n] != ' ' && n + 1 < cap)
		n++;
	if (n && e->error[n - 1] == ':')
		n--;
	snprintf(buf, cap, "%.*s", (int)n, n ? e->error : "error");
}

struct count {
	char view[VIEWS_NAME_MAX + 1];
	char kind[64];
	uint64_t n;
};

/* Counts per (view, kind) over every entry of the selection. */
static int count_all(views_dlq *q, const char *view, struct count **out, size_t *nout,
                     uint64_t *total)
{
	struct views_dlq_entry *page = malloc(512 * sizeof(*page));
	struct views_dlq_cursor cur = {"", 0};
	struct count *c = NULL;
	size_t nc = 0;
	bool more = true;
	int err = MMO_OK;

	*total = 0;
	if (!page)
		return MMO_ENOMEM;
	while (more) {
		size_t got;

		if ((err = views_dlq_list(q, view, &cur, page, 512, &got, &more)) || !got)
			break;
		for (size_t i = 0; i < got; i++) {
			char kind[64];
			size_t k;

			kind_of(&page[i], kind, sizeof(kind));
			for (k = 0; k < nc; k++) {
				if (!strcmp(c[k].view, page[i].view) && !strcmp(c[k].kind, kind))
					break;
			}
			if (k == nc) {
				struct count *nw = realloc(c, (nc + 1) * sizeof(*c));

				if (!nw) {
					err = MMO_ENOMEM;
					goto out;
				}
				c = nw;
				memset(&c[nc], 0, sizeof(c[nc]));
				snprintf(c[nc].view, sizeof(c[nc].view), "%s", page[i].view);
				snprintf(c[nc].kind, sizeof(c[nc].kind), "%s", kind);
				nc++;
			}
			c[k].n++;
			(*total)++;
		}
		snprintf(cur.view, sizeof(cur.view), "%s", page[got - 1].view);
		cur.seq = page[got - 1].seq;
	}
out:
	free(page);
	*out = c;
	*nout = nc;
	return err;
}

static bool parse_cursor(const char *s, struct views_dlq_cursor *c)
{
	const char *colon = strchr(s, ':');
	uint64_t seq;

	if (!colon || colon == s || (size_t)(colon - s) > VIEWS_NAME_MAX ||
	    !cli_parse_u64(colon + 1, &seq))
		return false;
	snprintf(c->view, sizeof(c->view), "%.*s", (int)(colon - s), s);
	c->seq = seq;
	return !strcmp(c->view, "redis") || !strcmp(c->view, "mongo");
}

static int dlq_list(const struct common *o, uint64_t limit, const char *cursor, bool json)
{
	struct views_dlq_cursor cur = {"", 0};
	struct views_dlq_entry *page = NULL;
	struct count *counts = NULL;
	views_dlq *q = NULL;
	size_t n = 0, nc = 0;
	uint64_t total = 0;
	bool more = false;
	char msg[256] = "";
	int err, rc = EXIT_FAIL;

	if (cursor && !parse_cursor(cursor, &cur)) {
		cli_err("dlq", "--cursor: '%s' is not a cursor (VIEW:SEQ, as printed by list)",
		        cursor);
		return EXIT_USAGE;
	}
	err = views_dlq_open(o->data, true, &q, msg, sizeof(msg));
	if (err && err != MMO_ENOTFOUND) {
		cli_err("dlq", "%s", msg[0] ? msg : mmo_strerror(err));
		return EXIT_FAIL;
	}
	page = calloc(limit, sizeof(*page));
	if (!page)
		goto out;
	if (q) {
		if ((err = views_dlq_list(q, o->view, &cur, page, limit, &n, &more)) ||
		    (err = count_all(q, o->view, &counts, &nc, &total))) {
			cli_err("dlq", "reading the DLQ: %s", mmo_strerror(err));
			goto out;
		}
	}
	if (json) {
		json_t *j = json_object(), *ents = json_array(), *cs = json_array();
		char *s;

		for (size_t i = 0; i < n; i++) {
			json_t *e = json_object(), *pl = json_array();

			for (size_t k = 0; k < page[i].nplayers; k++)
				json_array_append_new(pl, json_string(page[i].players[k]));
			json_object_set_new(e, "seq", json_integer((json_int_t)page[i].seq));
			json_object_set_new(e, "view", json_string(page[i].view));
			json_object_set_new(e, "status",
			                    json_string(page[i].parked ? "parked" : "dead"));
			if (page[i].parked)
				json_object_set_new(e, "behind",
				                    json_integer((json_int_t)page[i].behind));
			json_object_set_new(e, "error", json_string(page[i].error));
			json_object_set_new(e, "attempts", json_integer(page[i].attempts));
			json_object_set_new(e, "first_failure_us", json_integer(page[i].first_us));
			json_object_set_new(e, "last_failure_us", json_integer(page[i].last_us));
			json_object_set_new(e, "players", pl);
			json_array_append_new(ents, e);
		}
		for (size_t i = 0; i < nc; i++) {
			json_t *c = json_object();

			json_object_set_new(c, "view", json_string(counts[i].view));
			json_object_set_new(c, "kind", json_string(counts[i].kind));
			json_object_set_new(c, "count", json_integer((json_int_t)counts[i].n));
			json_array_append_new(cs, c);
		}
		json_object_set_new(j, "entries", ents);
		if (more) {
			char c[64];

			snprintf(c, sizeof(c), "%s:%llu", page[n - 1].view,
			         (unsigned long long)page[n - 1].seq);
			json_object_set_new(j, "next_cursor", json_string(c));
		} else {
			json_object_set_new(j, "next_cursor", json_null());
		}
		json_object_set_new(j, "counts", cs);
		json_object_set_new(j, "total", json_integer((json_int_t)total));
		s = json_dumps(j, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		if (n)
			printf("%-6s %-10s %-7s %-8s %-24s %-24s %-20s %s\n", "VIEW", "SEQ",
			       "STATUS", "ATTEMPTS", "FIRST_FAILURE", "LAST_FAILURE", "PLAYERS",
			       "ERROR");
		for (size_t i = 0; i < n; i++) {
			char f1[64], f2[64], pl[2 * 66];

			iso_time(page[i].first_us, f1, sizeof(f1));
			iso_time(page[i].last_us, f2, sizeof(f2));
			snprintf(pl, sizeof(pl), "%s%s%s", page[i].players[0],
			         page[i].nplayers > 1 ? "," : "",
			         page[i].nplayers > 1 ? page[i].players[1] : "");
			printf("%-6s %-10llu %-7s %-8u %-24s %-24s %-20s %s\n", page[i].view,
			       (unsigned long long)page[i].seq, page[i].parked ? "parked" : "dead",
			       page[i].attempts, f1, f2, pl[0] ? pl : "-", page[i].error);
		}
		if (more)
			printf("next cursor: %s:%llu\n", page[n - 1].view,
			       (unsigned long long)page[n - 1].seq);
		printf("counts:\n");
		for (size_t i = 0; i < nc; i++)
			printf("  %-6s %-20s %llu\n", counts[i].view, counts[i].kind,
			       (unsigned long long)counts[i].n);
		printf("total %llu\n", (unsigned long long)total);
	}
	rc = EXIT_OK;
out:
	free(page);
	free(counts);
	views_dlq_close(q);
	return rc;
}

static int dlq_retry(const struct common *o, uint64_t seq, bool dry_run)
{
	static const char *all[] = {"redis", "mongo"};
	char trail[2][200];
	size_t ntrail = 0;
	evlog *log = NULL;
	int rc = EXIT_OK;

	if (cli_open_log(o->data, &log))
		return EXIT_FAIL;
	for (size_t i = 0; i < 2; i++) {
		struct views_retry_opts ro = {0};
		struct views_retry_result res = {0};
		char msg[512] = "";
		int err;

		if (o->view && strcmp(o->view, all[i]))
			continue;
		if (!o->view) {
			/* Every view that has entries. */
			views_dlq *q = NULL;
			uint64_t depth = 0;

			if (views_dlq_open(o->data, true, &q, NULL, 0) == MMO_OK) {
				depth = views_dlq_depth(q, all[i]);
				views_dlq_close(q);
			}
			if (!depth)
				continue;
		}
		ro.data_dir = o->data;
		ro.log = log;
		ro.view = all[i];
		ro.seq = seq;
		ro.dry_run = dry_run;
		ro.redis_url = o->redis;
		ro.mongo_uri = o->mongo_uri;
		ro.mongo_db = o->mongo_db;
		ro.out = stdout;
		err = views_dlq_retry(&ro, &res, msg, sizeof(msg));
		if (err) {
			cli_err("dlq", "retry %s: %s", all[i], msg[0] ? msg : mmo_strerror(err));
			rc = EXIT_FAIL;
			continue;
		}
		printf("%s: %s%llu tried, %llu applied, %llu refused again, %llu left parked\n",
		       all[i], dry_run ? "(dry run) " : "", (unsigned long long)res.tried,
		       (unsigned long long)res.applied, (unsigned long long)res.failed,
		       (unsigned long long)res.left_parked);
		if (!dry_run && res.tried) {
			snprintf(trail[ntrail++], sizeof(trail[0]),
			         "view=%s seq=%llu tried=%llu applied=%llu refused=%llu", all[i],
			         (unsigned long long)seq, (unsigned long long)res.tried,
			         (unsigned long long)res.applied, (unsigned long long)res.failed);
		}
		if (res.failed)
			rc = EXIT_FAIL;
	}
	evlog_close(log); /* one open of the log per process: close before appending */
	for (size_t i = 0; i < ntrail; i++)
		cli_admin_event(o->data, "dlq retry", trail[i]);
	return rc;
}

static int dlq_drop(const struct common *o, uint64_t seq)
{
	views_dlq *q = NULL;
	uint64_t removed = 0;
	char msg[256] = "";
	int err = views_dlq_open(o->data, false, &q, msg, sizeof(msg));

	if (err) {
		cli_err("dlq", "%s", msg[0] ? msg : mmo_strerror(err));
		return EXIT_FAIL;
	}
	err = views_dlq_drop(q, o->view, seq, &removed);
	views_dlq_close(q);
	if (err) {
		cli_err("dlq", "drop: %s", mmo_strerror(err));
		return EXIT_FAIL;
	}
	printf("dropped %llu\n", (unsigned long long)removed);
	if (removed) {
		char detail[200];

		snprintf(detail, sizeof(detail), "view=%s seq=%llu removed=%llu",
		         o->view ? o->view : "all", (unsigned long long)seq,
		         (unsigned long long)removed);
		cli_admin_event(o->data, "dlq drop", detail);
	}
	return EXIT_OK;
}

enum {
	O_VIEW = 256,
	O_LIMIT,
	O_CURSOR,
	O_FORMAT,
	O_SEQ,
	O_DRY,
	O_YES,
	O_DATA,
	O_REDIS,
	O_MONGO,
	O_MONGODB,
	O_BATCH
};

static const struct option dlq_lo[] = {{"view", required_argument, 0, O_VIEW},
                                       {"limit", required_argument, 0, O_LIMIT},
                                       {"cursor", required_argument, 0, O_CURSOR},
                                       {"format", required_argument, 0, O_FORMAT},
                                       {"seq", required_argument, 0, O_SEQ},
                                       {"dry-run", no_argument, 0, O_DRY},
                                       {"yes", no_argument, 0, O_YES},
                                       {"data", required_argument, 0, O_DATA},
                                       {"redis", required_argument, 0, O_REDIS},
                                       {"mongo-uri", required_argument, 0, O_MONGO},
                                       {"mongo-db", required_argument, 0, O_MONGODB},
                                       {"batch", required_argument, 0, O_BATCH},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};

int cmd_dlq(int argc, char **argv)
{
	const char *sub, *a_data = NULL, *a_redis = NULL, *a_mongo = NULL, *a_mdb = NULL,
	                 *a_limit = NULL, *a_cursor = NULL, *a_format = NULL, *a_seq = NULL;
	struct common o = {0};
	uint64_t limit = PAGE_DEFAULT, seq = 0;
	bool dry = false, yes = false;
	int c;

	if (argc < 2) {
		dlq_help(stderr);
		return EXIT_USAGE;
	}
	sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		dlq_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "list") && strcmp(sub, "retry") && strcmp(sub, "drop")) {
		cli_err("dlq", "unknown subcommand '%s' (list, retry, drop)", sub);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "h", dlq_lo, NULL)) != -1) {
		switch (c) {
		case O_VIEW: o.view = optarg; break;
		case O_LIMIT: a_limit = optarg; break;
		case O_CURSOR: a_cursor = optarg; break;
		case O_FORMAT: a_format = optarg; break;
		case O_SEQ: a_seq = optarg; break;
		case O_DRY: dry = true; break;
		case O_YES: yes = true; break;
		case O_DATA: a_data = optarg; break;
		case O_REDIS: a_redis = optarg; break;
		case O_MONGO: a_mongo = optarg; break;
		case O_MONGODB: a_mdb = optarg; break;
		case O_BATCH: break;
		case 'h': dlq_help(stdout); return EXIT_OK;
		default: dlq_help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc - 1) {
		cli_err("dlq", "unexpected argument '%s' (see mmo dlq --help)", argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (o.view && strcmp(o.view, "redis") && strcmp(o.view, "mongo")) {
		cli_err("dlq", "--view must be redis or mongo, not '%s'", o.view);
		return EXIT_USAGE;
	}
	if (a_limit && (!cli_parse_u64(a_limit, &limit) || limit == 0 || limit > PAGE_MAX)) {
		cli_err("dlq", "--limit takes 1..%d", PAGE_MAX);
		return EXIT_USAGE;
	}
	if (a_seq && (!cli_parse_u64(a_seq, &seq) || seq == 0)) {
		cli_err("dlq", "--seq takes a seq (1 or more), not '%s'", a_seq);
		return EXIT_USAGE;
	}
	if (a_format && strcmp(a_format, "text") && strcmp(a_format, "json")) {
		cli_err("dlq", "--format must be text or json");
		return EXIT_USAGE;
	}
	o.data = cli_opt("data", a_data, "./data");
	o.redis = cli_opt("redis", a_redis, "redis://127.0.0.1:6379");
	o.mongo_uri = cli_opt("mongo-uri", a_mongo, NULL);
	o.mongo_db = cli_opt("mongo-db", a_mdb, "mmo");
	if (!strcmp(sub, "list"))
		return dlq_list(&o, limit, a_cursor, a_format && !strcmp(a_format, "json"));
	if (!strcmp(sub, "retry"))
		return dlq_retry(&o, seq, dry);
	if (!yes) {
		cli_err("dlq", "drop forgets entries for good: add --yes to confirm");
		return EXIT_USAGE;
	}
	return dlq_drop(&o, seq);
}
