/* redis.h - a pool of hiredis connections (a leaf). */
#ifndef MMO_GW_REDIS_H
#define MMO_GW_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct redisReply;
struct redisContext;

struct gw_redis;
/* A pool for url, keeping up to users idle connections (the threads that
 * may run commands at once); its command latencies and errors count in m
 * (borrowed, outlives the pool). */
int gw_redis_new(const char *url, size_t users, struct gw_metrics *m, struct gw_redis **out,
                 char *err, size_t errlen);
void gw_redis_free(struct gw_redis *r);
/* Run one command (hiredis format: every %s is one binary-safe argument, so
 * input only ever travels as values). Returns the reply (caller frees with
 * freeReplyObject) or NULL when Redis is unreachable or answered an error. */
struct redisReply *gw_redis_cmd(struct gw_redis *r, const char *fmt, ...);
/* Run fmt (one %s) for each of args[0..n) in one pipeline; replies[i]
 * receive the replies (caller frees each). MMO_OK or MMO_EUNAVAIL (then
 * every replies[i] is NULL). */
int gw_redis_pipe(struct gw_redis *r, const char *fmt, const char *const *args, size_t n,
                  struct redisReply **replies);
/* An integer reply's value (0 for any other type); free a reply. */
long long gw_redis_int(const struct redisReply *r);
void gw_redis_reply_free(struct redisReply *r);
/* A connection of the pool's URL (authenticated, its database selected)
 * that the caller owns (redisFree), for a subscription; NULL if Redis is
 * unreachable. The pool's database number. */
struct redisContext *gw_redis_connect(struct gw_redis *r);
int gw_redis_db(const struct gw_redis *r);
/* Is Redis answering? (PING) */
bool gw_redis_up(struct gw_redis *r);

#endif
