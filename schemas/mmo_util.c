/* mmo_util.c - clocks, one-line logs, thread names. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "schemas/mmo_util.h"

int64_t mmo_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mmo_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int level = MMO_LOG_INFO;
static pthread_once_t level_once = PTHREAD_ONCE_INIT;

static void read_level(void)
{
	const char *s = getenv("MMO_LOG_LEVEL");

	if (s && !strcasecmp(s, "debug"))
		level = MMO_LOG_DEBUG;
	else if (s && !strcasecmp(s, "warn"))
		level = MMO_LOG_WARN;
	else if (s && !strcasecmp(s, "error"))
		level = MMO_LOG_ERROR;
}

/* MMO_LOG_LEVEL, read once (any thread may log first). */
static int threshold(void)
{
	pthread_once(&level_once, read_level);
	return level;
}

void mmo_logf(enum mmo_level lvl, const char *module, const char *fmt, ...)
{
	static const char *names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;

	if ((int)lvl < threshold())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	             "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
	             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000, names[lvl], module);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void mmo_thread_name(const char *name)
{
	char n[16];

	snprintf(n, sizeof(n), "%s", name);
	pthread_setname_np(pthread_self(), n);
}
