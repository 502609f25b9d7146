/* bench_gateway_soak.c - `mmo bench gateway --soak MINUTES`: a mixed load
 * (REST moves open loop at --rest-rate, then WebSocket moves at --ws-rate
 * over --ws-clients sockets that are opened and closed again each round)
 * repeated for MINUTES, printing the backend's RSS, descriptors and threads
 * after every round, and failing when they grow after the first round (the
 * warm-up): a leak of memory, sockets or threads shows as steady growth. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gateway_int.h"
#include "bench_util.h"
#include "schemas/mmo_util.h"

#define RSS_SLACK_KB  (32 * 1024) /* allocator and LMDB page-cache noise */
#define RSS_SLACK_PCT 20
#define FDS_SLACK     32 /* sockets in TIME_WAIT-like hand-over, pools */
#define THREADS_SLACK 4

struct figures {
	long rss_kb, fds, threads;
};

static long count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void measure(pid_t pid, struct figures *f)
{
	f->rss_kb = bench_pid_status(pid, "RssAnon"); /* not the log's mapped pages */
	f->threads = bench_pid_status(pid, "Threads");
	f->fds = count_fds(pid);
}

int bench_gw_soak(const struct bench_gw_config *cfg, struct player *pl, struct bench_gw_sut *sut,
                  char *why, size_t wl)
{
	int64_t t0 = mmo_mono_us(), end = t0 + (int64_t)cfg->soak_minutes * 60 * 1000000;
	struct bench_gw_phase *ph = calloc(1, sizeof(*ph));
	struct figures warm = {0}, now = {0};
	unsigned round = 0;
	bool grew;
	int rc = -1;

	if (!ph) {
		snprintf(why, wl, "out of memory");
		return -1;
	}
	while (mmo_mono_us() < end && !bench_gw_interrupted) {
		struct bench_gw_result res = {0};

		round++;
		memset(ph, 0, sizeof(*ph));
		ph->cfg = cfg;
		ph->pl = pl;
		ph->np = cfg->players;
		ph->port = sut->port[0];
		ph->rate = cfg->rest_rate;
		if (bench_gw_run_phase(ph, why, wl) || bench_gw_interrupted)
			goto out;
		if (cfg->ws_clients && bench_gw_ws_phase(cfg, sut, round, &res, why, wl))
			goto out;
		if (bench_gw_sut_check(sut, why, wl))
			goto out;
		if (res.missing) {
			snprintf(why, wl, "round %u: %llu WebSocket deliveries missing", round,
			         (unsigned long long)res.missing);
			goto out;
		}
		measure(sut->pid[0], &now);
		if (round == 1)
			warm = now;
		printf(
		    "soak round %u at %.0f s: rest_moves=%llu rest_errors=%llu ws_delivered=%llu "
		    "anon_mb=%.1f fds=%ld threads=%ld\n",
		    round, (double)(mmo_mono_us() - t0) / 1e6, (unsigned long long)ph->ok,
		    (unsigned long long)ph->errors, (unsigned long long)res.delivered,
		    (double)now.rss_kb / 1024.0, now.fds, now.threads);
		fflush(stdout);
	}
	if (round < 2) {
		snprintf(why, wl,
		         "--soak needs at least two rounds (a round is two phases of "
		         "--duration)");
		goto out;
	}
	grew = now.rss_kb > warm.rss_kb + RSS_SLACK_KB + warm.rss_kb * RSS_SLACK_PCT / 100 ||
	       now.fds > warm.fds + FDS_SLACK || now.threads > warm.threads + THREADS_SLACK;
	printf("soak rounds=%u minutes=%u anon_mb=%.1f->%.1f fds=%ld->%ld threads=%ld->%ld: %s\n",
	       round, cfg->soak_minutes, (double)warm.rss_kb / 1024.0, (double)now.rss_kb / 1024.0,
	       warm.fds, now.fds, warm.threads, now.threads, grew ? "GREW" : "steady");
	fflush(stdout);
	if (grew) {
		snprintf(why, wl, "the backend grew after the warm-up round (see the soak line)");
		goto out;
	}
	rc = 0;
out:
	free(ph);
	return rc;
}
