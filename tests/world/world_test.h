/* world_test.h - building intents for the world's tests. */
#ifndef MMO_WORLD_TEST_H
#define MMO_WORLD_TEST_H

#include <stdio.h>
#include <string.h>

#include "projector/world/world.h"

/* A scenario: one world, the next seq, a clock in µs. */
struct scen {
	world *w;
	uint64_t seq;
	int64_t ts;
	struct mmo_ev b;
	char eid[MMO_ID_MAX + 1];
	struct world_outcome out;
};

static inline Mmo__Event *scen_ev(struct scen *s, const char *type, const char *pid)
{
	s->seq++;
	snprintf(s->eid, sizeof(s->eid), "t:%llu", (unsigned long long)s->seq);
	mmo_ev_init(&s->b, type, s->eid, pid, NULL);
	s->b.ev.seq = s->seq;
	s->b.ev.ts = s->ts;
	return &s->b.ev;
}

/* Step one event; returns the outcome (valid until the next step). */
static inline struct world_outcome *scen_step(struct scen *s)
{
	int err = world_step(s->w, &s->b.ev, &s->out);

	if (err)
		fprintf(stderr, "world_step(seq %llu): %s\n", (unsigned long long)s->seq,
		        mmo_strerror(err));
	return &s->out;
}

static inline struct world_outcome *scen_register(struct scen *s, const char *pid, const char *name)
{
	scen_ev(s, "player.register", pid);
	s->b.body.player_register.username = (char *)name;
	return scen_step(s);
}

static inline struct world_outcome *scen_login(struct scen *s, const char *pid)
{
	scen_ev(s, "player.login", pid);
	return scen_step(s);
}

static inline struct world_outcome *scen_logout(struct scen *s, const char *pid)
{
	scen_ev(s, "player.logout", pid);
	return scen_step(s);
}

static inline struct world_outcome *scen_move(struct scen *s, const char *pid, double x, double y,
                                              double z)
{
	scen_ev(s, "player.move", pid);
	mmo_ev_set_pos(&s->b, x, y, z);
	return scen_step(s);
}

static inline struct world_outcome *scen_attack(struct scen *s, const char *pid, const char *def,
                                                const char *skill)
{
	scen_ev(s, "combat.attack", pid);
	s->b.body.combat_attack.defender_id = (char *)def;
	s->b.body.combat_attack.skill_id = (char *)skill;
	return scen_step(s);
}

#endif
