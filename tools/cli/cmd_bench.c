/* cmd_bench.c - `mmo bench`: which benchmark to run (tools/bench/bench.h
 * holds them). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tools/bench/bench.h"

static void bench_help(FILE *f)
{
	fprintf(f, "usage: mmo bench log|replay|audit|gateway|views [options]\n"
	           "Benchmarks against the physical limit (and a peer), in the same run.\n"
	           "\n"
	           "commands:\n"
	           "  log      the log's durable append rate and ack latency, against raw LMDB\n"
	           "           appends and Redis Streams XADD (appendfsync always)\n"
	           "  replay   the fold rate of `mmo replay`, against a bare LMDB cursor scan\n"
	           "           of the same records\n"
	           "  audit    the verify rate, against SHA-256 of the same records; the cost of\n"
	           "           a one-player query on logs of 1 M and 10 M events\n"
	           "  gateway  authenticated moves against the HTTP ceiling of civetweb;\n"
	           "           WebSocket delivery latency with thousands of clients\n"
	           "  views    the Redis projector's apply rate against pipelined HSETs\n"
	           "\n"
	           "`mmo bench <command> --help` lists its options.\n");
}

int cmd_bench(int argc, char **argv)
{
	if (argc < 2) {
		bench_help(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		bench_help(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "log"))
		return bench_log(argc - 1, argv + 1);
	if (!strcmp(argv[1], "replay"))
		return bench_replay(argc - 1, argv + 1);
	if (!strcmp(argv[1], "audit"))
		return bench_audit(argc - 1, argv + 1);
	if (!strcmp(argv[1], "gateway"))
		return bench_gateway(argc - 1, argv + 1);
	if (!strcmp(argv[1], "views"))
		return bench_views(argc - 1, argv + 1);
	cli_err("bench", "unknown benchmark '%s' (see mmo bench --help)", argv[1]);
	return EXIT_USAGE;
}
