/* bench_views.c - `mmo bench views`: the Redis projector against a bare
 * hiredis pipeline of HSETs, on the same server, in the same run.
 *
 * Starts its own redis-server (no persistence: the peer limit is the
 * server's command rate) on a free port, runs views_bench_redis() R times,
 * prints each run, the medians and, last:
 *   views redis_events_per_s=N raw_pipeline_per_s=N ratio_vs_raw=R
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"
#include "schemas/mmo_util.h"
#include "projector/views/views.h"

#define RUNS_MAX 15

static void help(FILE *f)
{
	fprintf(f,
	        "usage: mmo bench views [--events N] [--batch B] [--runs R] [--redis-server PATH]\n"
	        "The Redis projector applying N synthetic events (default 200000) in batches\n"
	        "of B (default 512), against N pipelined HSETs from a bare hiredis loop in\n"
	        "batches of the same size, on the same redis-server, started by the bench.\n"
	        "Prints each run, the medians and the summary line; target ratio_vs_raw >= 0.5.\n");
}

int bench_views(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"events", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
	    {"runs", required_argument, 0, 'r'},   {"redis-server", required_argument, 0, 's'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	uint64_t n = 200000, batch = 512, runs = 3;
	const char *server = "/usr/bin/redis-server";
	double vps[RUNS_MAX], raw[RUNS_MAX], ratio[RUNS_MAX];
	char url[64], msg[256];
	char dir[] = "/tmp/mmo-bench-views.XXXXXX";
	int c, port, rc = EXIT_FAIL;
	volatile pid_t pid = 0;
	unsigned uport;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!cli_parse_u64(optarg, &n) || n == 0 || n > 100000000) {
				cli_err("bench views", "--events takes 1..100000000");
				return EXIT_USAGE;
			}
			break;
		case 'b':
			if (!cli_parse_u64(optarg, &batch) || batch == 0 || batch > 65536) {
				cli_err("bench views", "--batch takes 1..65536");
				return EXIT_USAGE;
			}
			break;
		case 'r':
			if (!cli_parse_u64(optarg, &runs) || runs == 0 || runs > RUNS_MAX) {
				cli_err("bench views", "--runs takes 1..%d", RUNS_MAX);
				return EXIT_USAGE;
			}
			break;
		case 's': server = optarg; break;
		case 'h': help(stdout); return EXIT_OK;
		default:
			cli_err("bench views", "unrecognized option '%s' (see --help)",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("bench views", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (access(server, X_OK)) {
		cli_err("bench views", "cannot run %s: %s (use --redis-server PATH)", server,
		        strerror(errno));
		return EXIT_FAIL;
	}
	if (!mkdtemp(dir)) {
		cli_err("bench views", "cannot create a temporary folder: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (bench_redis_start(server, dir, NULL, &pid, NULL, &uport, msg, sizeof(msg))) {
		cli_err("bench views", "%s", msg);
		bench_rm_tree(dir);
		return EXIT_FAIL;
	}
	port = (int)uport;
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	printf("bench views: events=%llu batch=%llu runs=%llu redis=%s\n", (unsigned long long)n,
	       (unsigned long long)batch, (unsigned long long)runs, url);
	for (uint64_t i = 0; i < runs; i++) {
		fprintf(stderr, "bench views: run %llu/%llu ...\n", (unsigned long long)i + 1,
		        (unsigned long long)runs);
		if (views_bench_redis(url, (size_t)n, (size_t)batch, &vps[i], &raw[i], msg,
		                      sizeof(msg))) {
			cli_err("bench views", "run %llu failed: %s", (unsigned long long)i + 1,
			        msg);
			goto out;
		}
		ratio[i] = raw[i] > 0 ? vps[i] / raw[i] : 0;
		printf("run %llu: redis_events_per_s=%.0f raw_pipeline_per_s=%.0f ratio=%.3f\n",
		       (unsigned long long)i + 1, vps[i], raw[i], ratio[i]);
	}
	{
		double mr = bench_median(ratio, (unsigned)runs);

		printf("target: ratio_vs_raw >= 0.5: %s\n", mr >= 0.5 ? "met" : "MISSED");
		printf("views redis_events_per_s=%.0f raw_pipeline_per_s=%.0f ratio_vs_raw=%.2f\n",
		       bench_median(vps, (unsigned)runs), bench_median(raw, (unsigned)runs), mr);
	}
	rc = EXIT_OK;
out:
	bench_redis_stop(&pid);
	bench_rm_tree(dir);
	return rc;
}
