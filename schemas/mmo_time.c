/* mmo_time.c - RFC 3339 timestamps (see mmo_time.h).
 *
 * Calendar arithmetic is done here on the proleptic Gregorian calendar
 * (days_from_civil), not with timegm(): it does not normalise Feb 30 into
 * March, and it does not depend on the size of time_t.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_time.h"

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int parse_ms(const char *s, size_t n, int64_t *us)
{
	int64_t ms = 0;

	if (n > 15)
		return MMO_EINVAL;
	for (size_t i = 0; i < n; i++)
		ms = ms * 10 + (s[i] - '0');
	*us = ms * 1000;
	return MMO_OK;
}

int mmo_time_parse(const char *s, int64_t *us)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
	int64_t frac = 0, t;
	const char *p;
	size_t n;

	if (!s || !*s)
		return MMO_EINVAL;
	n = strlen(s);
	if (strspn(s, "0123456789") == n)
		return parse_ms(s, n, us);
	if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return MMO_EINVAL;
	p = s + 10;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (strlen(p) < 9 || !digits(p + 1, 2, &h) || p[3] != ':' ||
		    !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &sec))
			return MMO_EINVAL;
		p += 9;
		if (*p == '.') {
			int nd = 0;

			p++;
			for (; *p >= '0' && *p <= '9'; p++) {
				if (nd < 6) {
					frac = frac * 10 + (*p - '0');
					nd++;
				}
			}
			if (nd == 0)
				return MMO_EINVAL;
			for (; nd < 6; nd++)
				frac *= 10;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;

			if (strlen(p) != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
			    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
				return MMO_EINVAL;
			off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
			p += 6;
		} else {
			return MMO_EINVAL;
		}
	}
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return MMO_EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (t < 0)
		return MMO_EINVAL;
	*us = t * 1000000 + frac;
	return MMO_OK;
}

size_t mmo_time_format(int64_t us, char *buf, size_t cap)
{
	int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
	int y, m, d, n;

	if (us < 0)
		n = snprintf(buf, cap, "-");
	else {
		civil_from_days(days, &y, &m, &d);
		n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d,
		             (int)(rem / 3600000000LL), (int)(rem / 60000000 % 60),
		             (int)(rem / 1000000 % 60), (int)(rem % 1000000));
	}
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			buf[0] = 0;
		return 0;
	}
	return (size_t)n;
}
