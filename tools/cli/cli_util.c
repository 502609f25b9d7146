/* cli_util.c - what every subcommand shares: option values from the command
 * line or the environment, number parsing, one-line errors. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli_util.h"

const char *cli_opt(const char *name, const char *given, const char *def)
{
	char env[128] = "MMO_";
	size_t n = 4;
	const char *v;

	if (given)
		return given;
	for (const char *p = name; *p && n < sizeof(env) - 1; p++)
		env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	env[n] = 0;
	v = getenv(env);
	return v && *v ? v : def;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool cli_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end)
		return false;
	if (shift && end[1])
		return false;
	if (v > (~0ULL >> shift))
		return false;
	*out = (size_t)(v << shift);
	return true;
}

void cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mmo %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_open_log(const char *data, evlog **out)
{
	struct evlog_opts lo = {0};
	char dir[4096], msg[256] = "";
	int err;

	snprintf(dir, sizeof(dir), "%s/log", data);
	lo.dir = dir;
	lo.readonly = true;
	err = evlog_open(&lo, out, msg, sizeof(msg));
	if (err)
		fprintf(stderr, "mmo: cannot open the log in %s: %s\n", dir,
		        msg[0] ? msg : mmo_strerror(err));
	return err;
}
