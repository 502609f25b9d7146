/* bench_log_load.c - what every phase of `mmo bench log` shares: the event
 * it sends (one template of the wanted size, stamped with unique ids without
 * encoding), the latency histogram (log-linear, fixed size: recording never
 * allocates), progress lines and the process figures it reports. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, ppoll */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <linux/magic.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_log_int.h"
#include "bench_util.h"
#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"

/* CPU time (user + system) of this process, µs. */
int64_t bench_self_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

/* Bytes a process caused to be written to storage (/proc/PID/io), 0 if unknown. */
uint64_t bench_io_write_bytes(pid_t pid)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

static void put_digits(uint8_t *p, uint64_t v, unsigned n)
{
	while (n--) {
		p[n] = (uint8_t)('0' + v % 10);
		v /= 10;
	}
}

/* ------------------------------------------------------------ histogram */

/* ------------------------------------------------------------ the event */

/* One encoded event of exactly the wanted size, and where its varying
 * digits are, so producers stamp a unique event_id (and a player and a
 * region out of a fixed population) by patching bytes, without encoding. */

static const size_t pad_cap[4] = {MMO_ID_MAX - 16, MMO_ID_MAX - 7, MMO_ID_MAX - 3, MMO_TEXT_MAX};

/* The offset of the only occurrence of s in buf, or 0 if none or several. */
static size_t find_unique(const uint8_t *buf, size_t len, const char *s)
{
	size_t sl = strlen(s);
	const uint8_t *p = memmem(buf, len, s, sl);

	if (!p || memmem(p + 1, len - (size_t)(p + 1 - buf), s, sl))
		return 0;
	return (size_t)(p - buf);
}

static void fill(char *dst, char first, size_t pad, const char *tail)
{
	dst[0] = first;
	memset(dst + 1, 'x', pad);
	strcpy(dst + 1 + pad, tail);
}

static int tpl_try(struct bench_evtpl *t, const char *type, const size_t pad[4])
{
	char eid[MMO_ID_MAX + 1], pid[MMO_ID_MAX + 1], rid[MMO_ID_MAX + 1];
	char detail[MMO_TEXT_MAX + 1];
	struct mmo_ev b;
	size_t len, off;
	int err;

	for (int i = 0; i < 4; i++) {
		if (pad[i] > pad_cap[i])
			return MMO_ETOOBIG;
	}
	fill(eid, 'e', pad[0], "00-000000000000");
	fill(pid, 'p', pad[1], "000000");
	fill(rid, 'r', pad[2], "00");
	err = mmo_ev_init(&b, type, eid, pid, rid);
	if (err)
		return err;
	if (!strcmp(type, "player.move")) {
		if (pad[3])
			return MMO_ETOOBIG;
		mmo_ev_set_pos(&b, 1021.5, 64.25, -387.75);
	} else {
		memset(detail, 'x', pad[3]);
		detail[pad[3]] = 0;
		b.body.world_reject.reason = "bench";
		b.body.world_reject.detail = detail;
	}
	err = mmo_event_validate(&b.ev, NULL);
	if (!err)
		err = mmo_event_encode(&b.ev, t->buf, sizeof(t->buf), &len);
	if (err)
		return err;
	t->len = len;
	t->type = type;
	t->id_len[0] = strlen(eid);
	t->id_len[1] = strlen(pid);
	t->id_len[2] = strlen(rid);
	memcpy(t->pad, pad, sizeof(t->pad));
	if (!(off = find_unique(t->buf, len, eid)))
		return MMO_EINVAL;
	t->id_off = off + 1 + pad[0];
	if (!(off = find_unique(t->buf, len, pid)))
		return MMO_EINVAL;
	t->player_off = off + 1 + pad[1];
	if (!(off = find_unique(t->buf, len, rid)))
		return MMO_EINVAL;
	t->region_off = off + 1 + pad[2];
	return MMO_OK;
}

/* Build a player.move of exactly `want` bytes (ids padded evenly), or a
 * world.reject with a padded detail for sizes a move cannot reach.
 * On failure *lo and *hi give the sizes that can be built. */
int bench_tpl_make(struct bench_evtpl *t, size_t want, size_t *lo, size_t *hi)
{
	static const char *types[] = {"player.move", "world.reject"};

	*lo = SIZE_MAX;
	*hi = 0;
	for (size_t ti = 0; ti < 2; ti++) {
		size_t pad[4] = {0, 0, 0, 0}, full[4], len0, x;
		unsigned npads = ti == 0 ? 3 : 4;

		memcpy(full, pad_cap, sizeof(full));
		if (ti == 0)
			full[3] = 0;
		if (tpl_try(t, types[ti], full))
			continue;
		if (t->len > *hi)
			*hi = t->len;
		if (tpl_try(t, types[ti], pad))
			continue;
		len0 = t->len;
		if (len0 < *lo)
			*lo = len0;
		if (want < len0 || want > *hi)
			continue;
		/* Fill the event id, then the region id (16 keys: cheap to index),
		 * then the player id (e.g. "player:" + a UUID is 43 bytes), then the
		 * detail; then correct for varint steps. */
		x = want - len0;
		for (unsigned j = 0; j < npads && x; j++) {
			static const unsigned order[4] = {0, 2, 1, 3};
			unsigned i = order[j];
			size_t add = full[i] - pad[i] < x ? full[i] - pad[i] : x;

			pad[i] += add;
			x -= add;
		}
		for (int tries = 0; tries < 8; tries++) {
			long d;

			if (tpl_try(t, types[ti], pad))
				break;
			if (t->len == want)
				return MMO_OK;
			d = (long)want - (long)t->len;
			for (unsigned i = 0; i < npads; i++) {
				long np = (long)pad[i] + d;

				if (np >= 0 && np <= (long)full[i]) {
					pad[i] = (size_t)np;
					break;
				}
			}
		}
	}
	return MMO_EINVAL;
}

/* Write event number idx of producer p into dst (t->len bytes). Players act
 * in a pseudo-random order (a fixed hash of idx), as a game's do: consecutive
 * player ids would let the player index hit the same pages and flatter it. */
void bench_tpl_stamp(const struct bench_evtpl *t, uint8_t *dst, unsigned p, uint64_t idx,
                     unsigned players)
{
	uint64_t player = ((idx * 0x9E3779B97F4A7C15ULL) >> 32) % players;

	memcpy(dst, t->buf, t->len);
	put_digits(dst + t->id_off, p, 2);
	put_digits(dst + t->id_off + 3, idx, 12);
	put_digits(dst + t->player_off, player, 6);
	put_digits(dst + t->region_off, player % REGIONS, 2);
}

/* ------------------------------------------------------------ progress */

/* Progress on stderr, at most once a second. */

void bench_progress_tick(struct bench_progress *pg, const char *phase, unsigned run, uint64_t done,
                         uint64_t total)
{
	int64_t now = mmo_mono_us();

	if (now - pg->last < 1000000)
		return;
	fprintf(stderr, "bench: run %u %s: %llu/%llu (%.0f/s now, %.0f/s overall)\n", run, phase,
	        (unsigned long long)done, (unsigned long long)total,
	        (double)(done - pg->last_done) * 1e6 / (double)(now - pg->last),
	        (double)done * 1e6 / (double)(now - pg->t0));
	pg->last = now;
	pg->last_done = done;
}
