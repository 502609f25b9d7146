/* resp.c - Redis commands built into one reused buffer (see resp.h).
 *
 * Arguments are kept as offsets into one growing buffer and resolved when
 * sent; the protocol is then written into a second reused buffer and handed
 * to hiredis in one piece. No allocation per command once warm.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "views_int.h"

void resp_reset(struct resp *c)
{
	c->len = c->nargs = c->ncmds = 0;
	c->oom = false;
}

void resp_free(struct resp *c)
{
	free(c->buf);
	free(c->off);
	free(c->alen);
	free(c->cstart);
	free(c->owner);
	free(c->out);
	memset(c, 0, sizeof(*c));
}

void resp_cmd(struct resp *c, int owner)
{
	size_t cap = c->ccap;
	size_t *cs = views_grow(c->cstart, &cap, c->ncmds + 1, sizeof(size_t));
	int *ow;

	if (!cs) {
		c->oom = true;
		return;
	}
	c->cstart = cs;
	cap = c->ccap;
	ow = views_grow(c->owner, &cap, c->ncmds + 1, sizeof(int));
	if (!ow) {
		c->oom = true;
		return;
	}
	c->owner = ow;
	c->ccap = cap;
	c->cstart[c->ncmds] = c->nargs;
	c->owner[c->ncmds] = owner;
	c->ncmds++;
}

void resp_arg(struct resp *c, const void *p, size_t n)
{
	size_t acap = c->acap, bcap = c->cap;
	size_t *off, *al;
	char *b;

	if (c->oom)
		return;
	off = views_grow(c->off, &acap, c->nargs + 1, sizeof(size_t));
	if (off)
		c->off = off;
	acap = c->acap;
	al = views_grow(c->alen, &acap, c->nargs + 1, sizeof(size_t));
	if (al)
		c->alen = al;
	b = views_grow(c->buf, &bcap, c->len + n + 1, 1);
	if (!off || !al || !b) {
		c->oom = true;
		return;
	}
	c->acap = acap;
	c->buf = b;
	c->cap = bcap;
	memcpy(c->buf + c->len, p, n);
	c->off[c->nargs] = c->len;
	c->alen[c->nargs] = n;
	c->nargs++;
	c->len += n;
}

void resp_args(struct resp *c, const char *s)
{
	resp_arg(c, s, strlen(s));
}

void resp_argf(struct resp *c, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	resp_arg(c, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void resp_argd(struct resp *c, double v)
{
	char tmp[40];
	int n = views_fmt_double(tmp, sizeof(tmp), v);

	resp_arg(c, tmp, (size_t)n);
}

/* Decimal digits of u at the end of tmp[24]: where they start. */
static char *fmt_u(char *end, size_t u)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return end;
}

/* Append commands [from, to) to the context's output buffer: the protocol
 * (RESP) written here in one reused buffer, handed over in one piece; the
 * same bytes redisAppendCommandArgv would produce for each command. */
int resp_send(struct resp *c, redisContext *rc, size_t from, size_t to)
{
	size_t a_from, a_to, need, o = 0;
	char *out;

	if (c->oom)
		return MMO_ENOMEM;
	if (from >= to)
		return MMO_OK;
	a_from = c->cstart[from];
	a_to = to < c->ncmds ? c->cstart[to] : c->nargs;
	/* "*N\r\n" per command, "$L\r\n...\r\n" per argument (at most 20+3
	 * digits and signs each) */
	need = (to - from) * 24 + (a_to - a_from) * 26;
	for (size_t i = a_from; i < a_to; i++)
		need += c->alen[i];
	if (c->outcap < need) {
		out = realloc(c->out, need);
		if (!out)
			return MMO_ENOMEM;
		c->out = out;
		c->outcap = need;
	}
	out = c->out;
	for (size_t k = from; k < to; k++) {
		size_t a0 = c->cstart[k], a1 = k + 1 < c->ncmds ? c->cstart[k + 1] : c->nargs;
		char tmp[24], *d;

		d = fmt_u(tmp + sizeof(tmp), a1 - a0);
		out[o++] = '*';
		memcpy(out + o, d, (size_t)(tmp + sizeof(tmp) - d));
		o += (size_t)(tmp + sizeof(tmp) - d);
		out[o++] = '\r';
		out[o++] = '\n';
		for (size_t a = a0; a < a1; a++) {
			d = fmt_u(tmp + sizeof(tmp), c->alen[a]);
			out[o++] = '$';
			memcpy(out + o, d, (size_t)(tmp + sizeof(tmp) - d));
			o += (size_t)(tmp + sizeof(tmp) - d);
			out[o++] = '\r';
			out[o++] = '\n';
			memcpy(out + o, c->buf + c->off[a], c->alen[a]);
			o += c->alen[a];
			out[o++] = '\r';
			out[o++] = '\n';
		}
	}
	if (redisAppendFormattedCommand(rc, out, o) != REDIS_OK)
		return MMO_EUNAVAIL;
	return MMO_OK;
}

/* The first argument of command k (its name) and its second (a key). */
bool resp_key_is(const struct resp *c, size_t k, const char *key)
{
	size_t a = c->cstart[k] + 1, end = k + 1 < c->ncmds ? c->cstart[k + 1] : c->nargs;

	return a < end && c->alen[a] == strlen(key) && !memcmp(c->buf + c->off[a], key, c->alen[a]);
}
