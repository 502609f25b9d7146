/* cmd_views.c - `mmo views rebuild redis|mongo`: drop a view and fold it
 * again from the log (docs/views.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log/evlog.h"
#include "projector/views/views.h"
#include "schemas/mmo_util.h"

enum { O_DATA = 256, O_REDIS, O_MONGO, O_MONGODB, O_BATCH };

static const struct option views_lo[] = {{"data", required_argument, 0, O_DATA},
                                         {"redis", required_argument, 0, O_REDIS},
                                         {"mongo-uri", required_argument, 0, O_MONGO},
                                         {"mongo-db", required_argument, 0, O_MONGODB},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};

static void views_help(FILE *f)
{
	fprintf(
	    f, "usage: mmo views rebuild redis|mongo [--data DIR] [--redis URL] [--mongo-uri URI]\n"
	       "                 [--mongo-db NAME] [--batch N]\n"
	       "Drop a view (Redis: the mmo:player:* and mmo:region:*:players keys and the\n"
	       "checkpoint, found with SCAN; Mongo: the players and combat collections and the\n"
	       "checkpoint) and its DLQ entries, then fold the log (DATA/log) from seq 1 to its\n"
	       "head, with progress on stderr. Refuses while `mmo serve` runs the views role\n"
	       "on the same data folder. Options also come from MMO_<OPTION>.\n");
}

static void progress(const char *phase, uint64_t done, uint64_t total, void *arg)
{
	const char *view = arg;

	if (!strcmp(phase, "drop"))
		fprintf(stderr, "rebuild %s: dropping: %llu keys\n", view,
		        (unsigned long long)done);
	else
		fprintf(stderr, "rebuild %s: %llu/%llu events (%.0f%%)\n", view,
		        (unsigned long long)done, (unsigned long long)total,
		        total ? 100.0 * (double)done / (double)total : 100.0);
}

int cmd_views(int argc, char **argv)
{
	const char *a_data = NULL, *a_redis = NULL, *a_mongo = NULL, *a_mdb = NULL, *a_batch = NULL;
	struct views_rebuild_opts ro = {0};
	uint64_t batch = 0, applied = 0;
	evlog *log = NULL;
	char msg[512] = "";
	const char *view;
	int c, err;

	if (argc < 2) {
		views_help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		views_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "rebuild")) {
		cli_err("views", "unknown subcommand '%s' (rebuild)", argv[1]);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "h", views_lo, NULL)) != -1) {
		switch (c) {
		case O_DATA: a_data = optarg; break;
		case O_REDIS: a_redis = optarg; break;
		case O_MONGO: a_mongo = optarg; break;
		case O_MONGODB: a_mdb = optarg; break;
		case O_BATCH: a_batch = optarg; break;
		case 'h': views_help(stdout); return EXIT_OK;
		default: views_help(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 2) {
		cli_err("views", "rebuild takes one view: redis or mongo");
		return EXIT_USAGE;
	}
	view = argv[optind + 1];
	if (strcmp(view, "redis") && strcmp(view, "mongo")) {
		cli_err("views", "unknown view '%s' (redis or mongo)", view);
		return EXIT_USAGE;
	}
	if (a_batch && (!cli_parse_u64(a_batch, &batch) || batch == 0 || batch > VIEWS_BATCH_MAX)) {
		cli_err("views", "--batch takes 1..%d", VIEWS_BATCH_MAX);
		return EXIT_USAGE;
	}
	ro.data_dir = cli_opt("data", a_data, "./data");
	ro.redis_url = cli_opt("redis", a_redis, "redis://127.0.0.1:6379");
	ro.mongo_uri = cli_opt("mongo-uri", a_mongo, NULL);
	ro.mongo_db = cli_opt("mongo-db", a_mdb, "mmo");
	if (!strcmp(view, "mongo") && !ro.mongo_uri) {
		cli_err("views", "rebuild mongo needs --mongo-uri (or MMO_MONGO_URI)");
		return EXIT_USAGE;
	}
	/* Recorded first, so that the rebuilt view includes its own trace. */
	{
		char detail[200];

		snprintf(detail, sizeof(detail), "view=%s", view);
		cli_admin_event(ro.data_dir, "views rebuild", detail);
	}
	if (cli_open_log(ro.data_dir, &log))
		return EXIT_FAIL;
	ro.log = log;
	ro.view = view;
	ro.batch_max = batch;
	ro.progress = progress;
	ro.arg = (void *)view;
	err = views_rebuild(&ro, &applied, msg, sizeof(msg));
	evlog_close(log);
	if (err) {
		cli_err("views", "rebuild %s: %s", view, msg[0] ? msg : mmo_strerror(err));
		return EXIT_FAIL;
	}
	printf("rebuilt %s: %llu events applied\n", view, (unsigned long long)applied);
	return EXIT_OK;
}
