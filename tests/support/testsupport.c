/* testsupport.c - free ports, temporary folders, child processes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"

int ts_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int ts_tmpdir(char *path, size_t cap)
{
	const char *base = getenv("TMPDIR");

	snprintf(path, cap, "%s/mmo-test-XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(path) ? 0 : -1;
}

void ts_rmrf(const char *path)
{
	char cmd[4200];

	if (!path || !*path || !strcmp(path, "/"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "ts_rmrf: could not remove %s\n", path);
}

pid_t ts_spawn(char *const argv[], const char *logfile)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execv(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static bool file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;
	bool found = false;

	if (!f)
		return false;
	for (;;) {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	if (buf)
		found = memmem(buf, len, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

bool ts_wait_log(const char *logfile, const char *needle, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (file_contains(logfile, needle))
			return true;
		usleep(20 * 1000);
	}
	return false;
}

int ts_stop(pid_t pid, int sig, int timeout_ms)
{
	int status;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) == pid)
		return status;
	return -1;
}

const char *ts_mmo_bin(void)
{
	const char *b = getenv("MMO_BIN");

	return b && *b ? b : MMO_BIN_DEFAULT;
}

pid_t ts_redis_start(const char *dir, int *port, const char *extra_conf)
{
	char conf[4200], logf[4200], portstr[16];
	FILE *f;
	pid_t pid;

	*port = ts_free_port();
	snprintf(portstr, sizeof(portstr), "%d", *port);
	snprintf(conf, sizeof(conf), "%s/redis.conf", dir);
	snprintf(logf, sizeof(logf), "%s/redis.log", dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\ndaemonize no\n%s\n",
	        *port, dir, extra_conf ? extra_conf : "");
	fclose(f);
	char *argv[] = {"/usr/bin/redis-server", conf, NULL};
	if (access(argv[0], X_OK) != 0)
		return -1;
	pid = ts_spawn(argv, logf);
	if (pid > 0 && !ts_wait_log(logf, "Ready to accept connections", 10000)) {
		ts_stop(pid, SIGKILL, 1000);
		return -1;
	}
	return pid;
}
