/* cli_run.c - run a child process and capture its stdout and stderr. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "testsupport.h"

char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (n + 65536 + 1 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 65536 + 1);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

void run_argv(char *const argv[], struct run *r)
{
	char dir[4096], of[4200], ef[4200];
	int status = -1;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (ts_tmpdir(dir, sizeof(dir)))
		return;
	snprintf(of, sizeof(of), "%s/out", dir);
	snprintf(ef, sizeof(ef), "%s/err", dir);
	pid = fork();
	if (pid == 0) {
		int o = open(of, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(ef, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0)
			_exit(127);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid > 0) {
		for (int i = 0; i < 5000; i++) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			struct timespec ts = {0, 10 * 1000 * 1000};

			if (w == pid)
				break;
			if (i == 4999) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				status = -1;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (status != -1 && WIFEXITED(status))
			r->status = WEXITSTATUS(status);
	}
	r->out = slurp(of, NULL);
	r->err = slurp(ef, NULL);
	if (!r->out)
		r->out = calloc(1, 1);
	if (!r->err)
		r->err = calloc(1, 1);
	ts_rmrf(dir);
}

void run_mmo(struct run *r, ...)
{
	char *argv[64];
	size_t n = 0;
	va_list ap;
	char *a;

	argv[n++] = (char *)ts_mmo_bin();
	va_start(ap, r);
	while ((a = va_arg(ap, char *)) && n < 63)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	run_argv(argv, r);
}

void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

size_t run_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}
