/* bench_util.c - what the benchmarks share: ports, folders, medians, options. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench_util.h"
#include "schemas/mmo_util.h"
#include "tools/cli/cli_util.h"

void bench_sleep_us(int64_t us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	if (us > 0)
		nanosleep(&ts, NULL);
}

unsigned bench_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	if (fd < 0)
		return 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void bench_rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(const double *v, unsigned n)
{
	double *s, m;

	if (n == 0)
		return 0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

bool bench_parse_num(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
	uint64_t v;

	if (!cli_parse_u64(s, &v) || v < lo || v > hi) {
		cli_err(cmd, "--%s takes a number in %llu..%llu, not '%s'", opt,
		        (unsigned long long)lo, (unsigned long long)hi, s);
		return false;
	}
	*out = v;
	return true;
}

uint64_t bench_file_bytes(const char *dir, const char *name)
{
	char p[8800];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

int bench_redis_start(const char *path, const char *dir, const char *aof, volatile pid_t *pid,
                      volatile sig_atomic_t *stop, unsigned *port, char *why, size_t wl)
{
	char sport[16], logpath[4300];
	const char *args[] = {path,
	                      "--port",
	                      sport,
	                      "--bind",
	                      "127.0.0.1",
	                      "--dir",
	                      dir,
	                      "--save",
	                      "",
	                      "--daemonize",
	                      "no",
	                      "--protected-mode",
	                      "no",
	                      "--logfile",
	                      "",
	                      "--appendonly",
	                      aof ? "yes" : "no",
	                      aof ? "--appendfsync" : NULL,
	                      aof,
	                      "--auto-aof-rewrite-percentage",
	                      "0",
	                      NULL};
	pid_t parent = getpid(), child;
	int64_t deadline;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		snprintf(why, wl, "cannot create %.300s: %s", dir, strerror(errno));
		return -1;
	}
	if (access(path, X_OK)) {
		snprintf(why, wl, "cannot run %s: %s (use --redis-server PATH)", path,
		         strerror(errno));
		return -1;
	}
	*port = bench_free_port();
	snprintf(sport, sizeof(sport), "%u", *port);
	snprintf(logpath, sizeof(logpath), "%s/redis.out", dir);
	fflush(stdout);
	fflush(stderr);
	child = fork();
	if (child < 0) {
		snprintf(why, wl, "fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0640);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		for (int i = 3; i < 1024; i++)
			close(i);
		execv(path, (char *const *)args);
		_exit(127);
	}
	*pid = child;
	deadline = mmo_mono_us() + 10000000;
	while (mmo_mono_us() < deadline && !(stop && *stop)) {
		struct timeval tv = {0, 200000};
		redisContext *c;
		int status;

		if (waitpid(child, &status, WNOHANG) == child) {
			*pid = 0;
			snprintf(why, wl, "redis-server exited at start (see %.300s)", logpath);
			return -1;
		}
		c = redisConnectWithTimeout("127.0.0.1", (int)*port, tv);
		if (c && !c->err) {
			redisReply *r = redisCommand(c, "PING");
			bool ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");

			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (ok)
				return 0;
		} else if (c) {
			redisFree(c);
		}
		bench_sleep_us(50000);
	}
	snprintf(why, wl, "redis-server did not answer PING within 10 s (see %.300s)", logpath);
	return -1;
}

void bench_redis_stop(volatile pid_t *pid)
{
	pid_t p = *pid;
	int status;

	if (p <= 0)
		return;
	kill(p, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(p, &status, WNOHANG) == p) {
			*pid = 0;
			return;
		}
		bench_sleep_us(10000);
	}
	kill(p, SIGKILL);
	waitpid(p, &status, 0);
	*pid = 0;
}

/* CPU time (user + system) of another process, µs; 0 if unknown. */
int64_t bench_pid_cpu_us(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (int64_t)((ut + st) * 1000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
}

long bench_pid_status(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long v = 0;
	FILE *f;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}
