/* ratelimit.c - token buckets keyed by string (player, username, address).
 *
 * A fixed-size table of buckets behind one mutex: a bucket holds its tokens
 * and the time they were last refilled; taking first refills by the time
 * elapsed. The table never grows past its capacity: when it is full, the
 * buckets that are full again (idle keys) are forgotten, and if none is, the
 * oldest bucket of the key's slot is reused.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_hash.h"

#define KEY_MAX 160

struct bucket {
	char key[KEY_MAX];
	double tokens, burst, rate;
	int64_t last_us;
	struct bucket *next;
};

struct gw_rl {
	pthread_mutex_t mu;
	struct bucket **slots;
	size_t nslots, count, cap;
};

int gw_rl_new(size_t cap, struct gw_rl **out)
{
	struct gw_rl *t = calloc(1, sizeof(*t));

	if (!t)
		return MMO_ENOMEM;
	t->cap = cap ? cap : 65536;
	t->nslots = 1;
	while (t->nslots < t->cap)
		t->nslots <<= 1;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return MMO_ENOMEM;
	}
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return MMO_OK;
}

void gw_rl_free(struct gw_rl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nslots; i++) {
		struct bucket *b = t->slots[i], *n;

		for (; b; b = n) {
			n = b->next;
			free(b);
		}
	}
	free(t->slots);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void refill(struct bucket *b, int64_t now_us)
{
	if (now_us > b->last_us) {
		b->tokens += b->rate * (double)(now_us - b->last_us) / 1e6;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_us = now_us;
	}
}

static void purge_locked(struct gw_rl *t, int64_t now_us)
{
	for (size_t i = 0; i < t->nslots; i++) {
		struct bucket **pp = &t->slots[i];

		while (*pp) {
			struct bucket *b = *pp;

			refill(b, now_us);
			if (b->tokens >= b->burst) {
				*pp = b->next;
				free(b);
				t->count--;
			} else {
				pp = &b->next;
			}
		}
	}
}

void gw_rl_purge(struct gw_rl *t, int64_t now_us)
{
	pthread_mutex_lock(&t->mu);
	purge_locked(t, now_us);
	pthread_mutex_unlock(&t->mu);
}

bool gw_rl_take(struct gw_rl *t, const char *key, double rate, double burst, double n,
                int64_t now_us, int64_t *retry_us)
{
	size_t slot = mmo_fnv1a_str(key) & (t->nslots - 1);
	struct bucket *b;
	double need = n > 0 ? n : 1;
	bool ok;

	pthread_mutex_lock(&t->mu);
	for (b = t->slots[slot]; b; b = b->next) {
		if (!strncmp(b->key, key, KEY_MAX - 1))
			break;
	}
	if (!b) {
		if (t->count >= t->cap)
			purge_locked(t, now_us);
		if (t->count >= t->cap && t->slots[slot]) {
			b = t->slots[slot]; /* reuse: the table is full of busy keys */
		} else {
			b = calloc(1, sizeof(*b));
			if (!b) {
				pthread_mutex_unlock(&t->mu);
				if (retry_us)
					*retry_us = 1000000;
				return false;
			}
			b->next = t->slots[slot];
			t->slots[slot] = b;
			t->count++;
		}
		strncpy(b->key, key, KEY_MAX - 1);
		b->key[KEY_MAX - 1] = 0;
		b->tokens = burst;
		b->last_us = now_us;
	}
	b->rate = rate > 0 ? rate : 1e-9;
	b->burst = burst;
	refill(b, now_us);
	ok = b->tokens >= need;
	if (ok && n > 0)
		b->tokens -= n;
	if (!ok && retry_us)
		*retry_us = (int64_t)ceil((need - b->tokens) / b->rate * 1e6);
	pthread_mutex_unlock(&t->mu);
	return ok;
}
