/* resp.h - Redis commands built into one reused buffer and sent as RESP.
 * Internal to projector/views (the Redis view). */
#ifndef MMO_VIEWS_RESP_H
#define MMO_VIEWS_RESP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* Commands built into one buffer: args as offsets (the buffer may grow),
 * resolved when sent. Reused from batch to batch. */
struct resp {
	char *buf;
	size_t len, cap;
	size_t *off, *alen; /* per argument */
	size_t nargs, acap;
	size_t *cstart; /* per command: first argument */
	int *owner;     /* per command: event index, -1 none */
	size_t ncmds, ccap;
	char *out; /* scratch for sending: the protocol */
	size_t outcap;
	bool oom;
};

/* Forget the commands, keep the memory. */
void resp_reset(struct resp *c);

/* Free the memory; c is then empty (usable again). */
void resp_free(struct resp *c);

/* Start a command; owner is the index of the event it belongs to, -1 none.
 * Out of memory is sticky (c->oom) and reported by resp_send(). */
void resp_cmd(struct resp *c, int owner);

/* Add an argument to the current command: n bytes at p (copied), a string,
 * a printf-style one (at most 255 bytes), a double that reads back exactly. */
void resp_arg(struct resp *c, const void *p, size_t n);
void resp_args(struct resp *c, const char *s);
void resp_argf(struct resp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_argd(struct resp *c, double v);

/* Append commands [from, to) to rc's output buffer in one piece (the bytes
 * redisAppendCommandArgv would write for each). MMO_OK, MMO_ENOMEM (also
 * for an earlier failure to build) or MMO_EUNAVAIL. */
int resp_send(struct resp *c, redisContext *rc, size_t from, size_t to);

/* Is key the second argument (the key) of command k? */
bool resp_key_is(const struct resp *c, size_t k, const char *key);

#endif
