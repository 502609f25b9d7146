/* bench_gateway_procs.c - the processes of `mmo bench gateway` as the
 * bench sees them: figures from /proc (peak RSS, CPU, fd limits), the pipe
 * ends kept for children (each child forked later closes those not its
 * own), a port read from a child, and stopping a child within a bound.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, prlimit */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_gateway_int.h"
#include "bench_util.h"

#define KEPT_MAX (4 * PROCS_MAX + 8)

double bench_gw_pid_cpu_s(pid_t pid)
{
	return (double)bench_pid_cpu_us(pid) / 1e6;
}

void bench_gw_sut_sample(struct bench_gw_sut *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		long kb = s->pid[i] > 0 ? bench_pid_status(s->pid[i], "VmHWM") : 0;

		if (kb > s->peak_kb[i])
			s->peak_kb[i] = kb;
	}
}

int bench_gw_sut_check(struct bench_gw_sut *s, char *why, size_t wl)
{
	for (unsigned i = 0; i < s->n; i++) {
		pid_t pid = s->pid[i];
		int st;

		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
			s->pid[i] = 0;
			if (WIFSIGNALED(st))
				snprintf(why, wl, "%s %u (pid %d) was killed by signal %d",
				         i ? "gateway" : "the backend", i, (int)pid, WTERMSIG(st));
			else
				snprintf(why, wl, "%s %u (pid %d) exited with status %d",
				         i ? "gateway" : "the backend", i, (int)pid,
				         WEXITSTATUS(st));
			return -1;
		}
	}
	return 0;
}

double bench_gw_sut_cpu_s(const struct bench_gw_sut *s)
{
	double t = 0;

	for (unsigned i = 0; i < s->n; i++)
		if (s->pid[i] > 0)
			t += bench_gw_pid_cpu_s(s->pid[i]);
	return t;
}

/* The soft and hard RLIMIT_NOFILE of pid, as one "S/H" text. */
static void nofile_text(pid_t pid, char *out, size_t cap)
{
	struct rlimit rl;

	if (prlimit(pid, RLIMIT_NOFILE, NULL, &rl))
		snprintf(out, cap, "unknown (%s)", strerror(errno));
	else
		snprintf(out, cap, "%llu/%llu", (unsigned long long)rl.rlim_cur,
		         (unsigned long long)rl.rlim_max);
}

static int kept[KEPT_MAX];
static unsigned nkept;

void bench_gw_fd_keep(int fd)
{
	if (fd >= 0 && nkept < KEPT_MAX)
		kept[nkept++] = fd;
}

void bench_gw_fd_close(int *fd)
{
	if (*fd < 0)
		return;
	for (unsigned i = 0; i < nkept; i++)
		if (kept[i] == *fd) {
			kept[i] = kept[--nkept];
			break;
		}
	close(*fd);
	*fd = -1;
}

void bench_gw_fd_close_kept(int keep_a, int keep_b)
{
	for (unsigned i = 0; i < nkept; i++)
		if (kept[i] != keep_a && kept[i] != keep_b)
			close(kept[i]);
	nkept = 0;
}

int bench_gw_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC))
		return -1;
	bench_gw_fd_keep(p[0]);
	bench_gw_fd_keep(p[1]);
	return 0;
}

void bench_gw_note_limits(const char *who, unsigned k, pid_t pid)
{
	char t[64];

	nofile_text(pid, t, sizeof(t));
	fprintf(stderr, "bench: fd limit (soft/hard) of %s %u, pid %d: %s\n", who, k, (int)pid, t);
}

void bench_gw_child_stop(volatile pid_t *pp, int sig, int wait_ms)
{
	pid_t pid = *pp;
	int status;

	if (pid <= 0)
		return;
	kill(pid, sig);
	for (int i = 0; i < wait_ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*pp = 0;
			return;
		}
		bench_sleep_us(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	*pp = 0;
}

int bench_gw_read_port(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	int port = 0;

	while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR && !bench_gw_interrupted)
		;
	if (!(p.revents & (POLLIN | POLLHUP)) || read(fd, &port, sizeof(port)) != sizeof(port))
		return 0;
	return port;
}
