/* test_rules.c - the rules of docs/rules.md, through the pure fold: every
 * rejection reason from a scenario, and what accepted actions do. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "world_test.h"

#define SEC 1000000LL

static int setup(void **state)
{
	struct scen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(world_new(42, &s->w), MMO_OK);
	s->ts = 1000 * SEC;
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct scen *s = *state;

	world_free(s->w);
	free(s);
	return 0;
}

static struct world_player pl(struct scen *s, const char *id)
{
	struct world_player p;

	assert_int_equal(world_player_get(s->w, id, &p), MMO_OK);
	return p;
}

static void assert_reject(const struct world_outcome *o, const char *reason)
{
	assert_non_null(o->reason);
	assert_string_equal(o->reason, reason);
	assert_true(o->n >= 1);
	const Mmo__Event *e = &o->ev[o->n - 1].b.ev;
	assert_string_equal(e->type, "world.reject");
	assert_string_equal(e->world_reject->reason, reason);
	assert_int_equal(mmo_event_validate(e, NULL), MMO_OK);
}

static void assert_valid(const struct world_outcome *o)
{
	for (size_t i = 0; i < o->n; i++) {
		const char *field = NULL;
		int err = mmo_event_validate(&o->ev[i].b.ev, &field);

		if (err)
			fail_msg("outcome %zu invalid: %s (%s)", i, mmo_strerror(err), field);
	}
}

/* Two online players p1, p2 at the spawn point. */
static void two_players(struct scen *s)
{
	scen_register(s, "p1", "alice");
	scen_register(s, "p2", "bob");
	assert_null(scen_login(s, "p1")->reason);
	assert_null(scen_login(s, "p2")->reason);
}

/* ---------------------------------------------------------------- accepted */

static void register_creates_offline_player_at_spawn(void **state)
{
	struct scen *s = *state;
	const struct world_rules *r = world_rules();
	struct world_player p;

	assert_int_equal(scen_register(s, "p1", "alice")->n, 0); /* a fact: no outcome */
	p = pl(s, "p1");
	assert_string_equal(p.name, "alice");
	assert_int_equal(p.hp, r->max_hp);
	assert_true(p.alive);
	assert_false(p.online);
	assert_true(p.pos.x == r->spawn.x && p.pos.y == r->spawn.y && p.pos.z == r->spawn.z);
	assert_string_equal(p.region_id, "r_10_10");
	assert_int_equal(world_seq(s->w), 1);
}

static void register_twice_keeps_the_first(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_register(s, "p1", "mallory");
	assert_string_equal(pl(s, "p1").name, "alice");
	assert_int_equal(world_player_count(s->w), 1);
}

static void login_spawns_player_online_with_derived_id(void **state)
{
	struct scen *s = *state;
	struct world_outcome *o;

	scen_register(s, "p1", "alice");
	o = scen_login(s, "p1");
	assert_null(o->reason);
	assert_int_equal(o->n, 1);
	assert_valid(o);
	assert_string_equal(o->ev[0].b.ev.type, "world.spawn");
	assert_string_equal(o->ev[0].b.ev.event_id, "w:2:0");
	assert_int_equal(o->ev[0].b.ev.cause_seq, 2);
	assert_string_equal(o->ev[0].b.ev.player_id, "p1");
	assert_string_equal(o->ev[0].b.ev.region_id, "r_10_10");
	assert_int_equal(o->ev[0].b.ev.world_spawn->hp, 100);
	assert_true(pl(s, "p1").online);
	assert_int_equal(pl(s, "p1").last_move_ts, s->ts);
}

static void logout_despawns_and_keeps_position(void **state)
{
	struct scen *s = *state;
	struct world_outcome *o;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	s->ts += SEC;
	assert_null(scen_move(s, "p1", 5005, 5000, 0)->reason);
	o = scen_logout(s, "p1");
	assert_null(o->reason);
	assert_int_equal(o->n, 1);
	assert_valid(o);
	assert_string_equal(o->ev[0].b.ev.type, "world.despawn");
	assert_string_equal(o->ev[0].b.ev.world_despawn->reason, "logout");
	assert_false(pl(s, "p1").online);
	assert_true(pl(s, "p1").pos.x == 5005);
	/* Back online where it left. */
	o = scen_login(s, "p1");
	assert_null(o->reason);
	assert_true(o->ev[0].b.ev.world_spawn->position->x == 5005);
}

static void move_changes_position_region_and_time(void **state)
{
	struct scen *s = *state;
	struct world_outcome *o;
	struct world_player p;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	/* 10 u/s plus 1 u of slack: 11 units after one second is allowed. */
	s->ts += SEC;
	o = scen_move(s, "p1", 5000, 4989, 0);
	assert_null(o->reason);
	assert_int_equal(o->n, 1);
	assert_valid(o);
	assert_string_equal(o->ev[0].b.ev.type, "world.update");
	assert_string_equal(o->ev[0].b.ev.region_id, "r_10_9");
	assert_string_equal(o->ev[0].b.ev.world_update->from_region_id, "r_10_10");
	p = pl(s, "p1");
	assert_true(p.pos.x == 5000 && p.pos.y == 4989 && p.pos.z == 0);
	assert_string_equal(p.region_id, "r_10_9");
	assert_int_equal(p.last_move_ts, s->ts);
	assert_int_equal(p.seq, s->seq);
}

static void move_speed_is_measured_from_the_last_move(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	s->ts += 10 * SEC;
	assert_null(scen_move(s, "p1", 5100, 5000, 0)->reason); /* 100 <= 101 */
	s->ts += SEC / 2;
	assert_null(scen_move(s, "p1", 5106, 5000, 0)->reason); /* 6 <= 6 */
	s->ts += SEC / 2;
	assert_reject(scen_move(s, "p1", 5112.5, 5000, 0), "too_fast"); /* 6.5 > 6 */
	assert_true(pl(s, "p1").pos.x == 5106);
}

static void attack_hit_lowers_hp_by_the_damage(void **state)
{
	struct scen *s = *state;
	struct world_outcome *o;
	const Mmo__CombatResult *r;
	size_t k;

	two_players(s);
	s->ts += SEC;
	o = scen_attack(s, "p1", "p2", "punch");
	assert_null(o->reason);
	assert_valid(o);
	assert_string_equal(o->ev[0].b.ev.type, "combat.result");
	r = o->ev[0].b.ev.combat_result;
	assert_string_equal(r->attacker_id, "p1");
	assert_string_equal(r->defender_id, "p2");
	assert_string_equal(r->skill_id, "punch");
	assert_int_equal(r->defender_hp, 100 - r->damage);
	assert_int_equal(pl(s, "p2").hp, r->defender_hp);
	assert_non_null(world_skill_find("punch", &k));
	assert_int_equal(pl(s, "p1").skill_used_at[k], s->ts);
}

/* Over many intents (decide only: the state stays), the damage is always
 * one the formula allows and the chances are near 10% miss, 10% critical. */
static void attack_damage_follows_the_formula(void **state)
{
	struct scen *s = *state;
	const struct world_rules *r = world_rules();
	unsigned miss = 0, crit = 0, hit = 0, n = 20000;

	two_players(s);
	s->ts += SEC;
	for (size_t sk = 0; world_skill_at(sk); sk++) {
		const struct world_skill *skill = world_skill_at(sk);

		for (unsigned i = 0; i < n; i++) {
			struct mmo_ev b;
			struct world_outcome o;
			const Mmo__CombatResult *cr;

			mmo_ev_init(&b, "combat.attack", "t", "p1", NULL);
			b.ev.seq = 1000 + i;
			b.ev.ts = s->ts;
			b.body.combat_attack.defender_id = "p2";
			b.body.combat_attack.skill_id = (char *)skill->name;
			assert_int_equal(world_decide(s->w, &b.ev, &o), MMO_OK);
			assert_null(o.reason);
			cr = o.ev[0].b.ev.combat_result;
			if (!strcmp(cr->result, "miss")) {
				assert_int_equal(cr->damage, 0);
				miss++;
			} else if (!strcmp(cr->result, "hit")) {
				assert_in_range(cr->damage, skill->damage,
				                skill->damage + skill->spread);
				hit++;
			} else {
				assert_string_equal(cr->result, "critical");
				assert_in_range(cr->damage, skill->damage * r->crit_mult,
				                (skill->damage + skill->spread) * r->crit_mult);
				crit++;
			}
			assert_int_equal(cr->defender_hp, cr->damage >= 100 ? 0 : 100 - cr->damage);
		}
	}
	n *= 3;
	assert_in_range(miss, n * 9 / 100, n * 11 / 100);
	assert_in_range(crit, n * 9 / 100, n * 11 / 100);
	assert_int_equal(miss + crit + hit, n);
}

static void randomness_depends_on_seed_and_seq_only(void **state)
{
	struct scen *s = *state;
	world *other;
	unsigned same = 0, diff_seed = 0;

	two_players(s);
	assert_int_equal(world_new(43, &other), MMO_OK);
	{
		/* The same players in a world with another seed. */
		struct scen t = {.w = other, .ts = 1000 * SEC};
		two_players(&t);
	}
	for (uint64_t seq = 100; seq < 300; seq++) {
		struct mmo_ev b;
		struct world_outcome o1, o2, o3;

		mmo_ev_init(&b, "combat.attack", "t", "p1", NULL);
		b.ev.seq = seq;
		b.ev.ts = s->ts + SEC;
		b.body.combat_attack.defender_id = "p2";
		b.body.combat_attack.skill_id = "fireball";
		world_decide(s->w, &b.ev, &o1);
		world_decide(s->w, &b.ev, &o2);
		world_decide(other, &b.ev, &o3);
		same += o1.ev[0].b.ev.combat_result->damage == o2.ev[0].b.ev.combat_result->damage;
		diff_seed +=
		    o1.ev[0].b.ev.combat_result->damage != o3.ev[0].b.ev.combat_result->damage;
	}
	assert_int_equal(same, 200);
	assert_true(diff_seed > 100);
	world_free(other);
}

static void death_then_respawn_after_the_delay(void **state)
{
	struct scen *s = *state;
	const struct world_rules *r = world_rules();
	struct world_outcome *o;
	int64_t died = 0;

	two_players(s);
	/* Fireball until p2 dies (3 s cooldown). */
	for (int i = 0; i < 100 && pl(s, "p2").alive; i++) {
		s->ts += 3 * SEC;
		o = scen_attack(s, "p1", "p2", "fireball");
		assert_null(o->reason);
		assert_valid(o);
		if (o->ev[0].b.ev.combat_result->defender_hp == 0) {
			assert_int_equal(o->n, 2);
			assert_string_equal(o->ev[1].b.ev.type, "world.despawn");
			assert_string_equal(o->ev[1].b.ev.world_despawn->reason, "death");
			assert_string_equal(
			    o->ev[1].b.ev.event_id + strlen(o->ev[1].b.ev.event_id) - 2, ":1");
			died = s->ts;
		} else {
			assert_int_equal(o->n, 1);
		}
	}
	assert_false(pl(s, "p2").alive);
	assert_int_equal(pl(s, "p2").hp, 0);
	assert_int_equal(pl(s, "p2").died_at, died);
	assert_true(pl(s, "p2").online);

	/* Dead: refused, and not a target. */
	s->ts += SEC;
	assert_reject(scen_move(s, "p2", 5000, 5000, 1), "dead");
	assert_reject(scen_attack(s, "p2", "p1", "punch"), "dead");
	s->ts += 3 * SEC;
	assert_reject(scen_attack(s, "p1", "p2", "fireball"), "target_dead");

	/* After the delay, its next intent respawns it at the spawn point,
	 * with full hp, and is then judged from there. */
	s->ts = died + r->respawn_delay_us;
	o = scen_move(s, "p2", r->spawn.x + 1, r->spawn.y, r->spawn.z);
	assert_null(o->reason);
	assert_int_equal(o->n, 2);
	assert_valid(o);
	assert_string_equal(o->ev[0].b.ev.type, "world.spawn");
	assert_int_equal(o->ev[0].b.ev.world_spawn->hp, r->max_hp);
	assert_string_equal(o->ev[1].b.ev.type, "world.update");
	assert_true(pl(s, "p2").alive);
	assert_int_equal(pl(s, "p2").hp, r->max_hp);
	assert_true(pl(s, "p2").pos.x == r->spawn.x + 1);
	assert_true(world_invariant_holds(s->w, "all", NULL, NULL, 0));
}

static void login_after_death_respawns_once_the_delay_is_over(void **state)
{
	struct scen *s = *state;
	const struct world_rules *r = world_rules();
	struct world_outcome *o;

	two_players(s);
	while (pl(s, "p2").alive) {
		s->ts += 3 * SEC;
		scen_attack(s, "p1", "p2", "fireball");
	}
	scen_logout(s, "p2");
	/* Too early: back online, still dead. */
	o = scen_login(s, "p2");
	assert_null(o->reason);
	assert_int_equal(o->ev[0].b.ev.world_spawn->hp, 0);
	assert_false(pl(s, "p2").alive);
	scen_logout(s, "p2");
	s->ts += r->respawn_delay_us;
	o = scen_login(s, "p2");
	assert_int_equal(o->ev[0].b.ev.world_spawn->hp, r->max_hp);
	assert_true(pl(s, "p2").alive);
}

static void cooldown_ends_after_its_time(void **state)
{
	struct scen *s = *state;

	two_players(s);
	s->ts += SEC;
	assert_null(scen_attack(s, "p1", "p2", "slash")->reason);
	s->ts += SEC - 1;
	assert_reject(scen_attack(s, "p1", "p2", "slash"), "cooldown");
	assert_null(scen_attack(s, "p1", "p2", "punch")->reason); /* per skill */
	s->ts += 1;
	assert_null(scen_attack(s, "p1", "p2", "slash")->reason);
}

static void range_is_inclusive(void **state)
{
	struct scen *s = *state;

	two_players(s);
	s->ts += SEC;
	assert_null(scen_move(s, "p2", 5003, 5000, 0)->reason);
	s->ts += SEC;
	assert_null(scen_attack(s, "p1", "p2", "slash")->reason);           /* 3 <= 3 */
	assert_reject(scen_attack(s, "p1", "p2", "punch"), "out_of_range"); /* 3 > 2 */
}

/* ---------------------------------------------------------------- rejections */

static void reject_unknown_player(void **state)
{
	struct scen *s = *state;

	assert_reject(scen_login(s, "ghost"), "unknown_player");
	assert_reject(scen_logout(s, "ghost"), "unknown_player");
	assert_reject(scen_move(s, "ghost", 1, 1, 1), "unknown_player");
	assert_reject(scen_attack(s, "ghost", "p1", "punch"), "unknown_player");
	assert_int_equal(world_player_count(s->w), 0);
	assert_string_equal(s->out.ev[0].b.ev.player_id, "ghost");
}

static void reject_not_logged_in(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_register(s, "p2", "bob");
	assert_reject(scen_move(s, "p1", 5000, 5000, 1), "not_logged_in");
	assert_reject(scen_logout(s, "p1"), "not_logged_in");
	assert_reject(scen_attack(s, "p1", "p2", "punch"), "not_logged_in");
}

static void reject_already_online(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	assert_reject(scen_login(s, "p1"), "already_online");
}

static void reject_too_fast(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	s->ts += SEC;
	assert_reject(scen_move(s, "p1", 5011.01, 5000, 0), "too_fast");
	assert_reject(scen_move(s, "p1", 5000, 5000, 11.5), "too_fast"); /* z counts too */
	assert_true(pl(s, "p1").pos.x == 5000);
}

static void reject_out_of_bounds(void **state)
{
	struct scen *s = *state;

	scen_register(s, "p1", "alice");
	scen_login(s, "p1");
	s->ts += 1000 * SEC;
	assert_reject(scen_move(s, "p1", -0.5, 5000, 0), "out_of_bounds");
	assert_reject(scen_move(s, "p1", 10000.5, 5000, 0), "out_of_bounds");
	assert_reject(scen_move(s, "p1", 5000, 5000, -1), "out_of_bounds");
	assert_reject(scen_move(s, "p1", 5000, 5000, 1000.5), "out_of_bounds");
	assert_reject(scen_move(s, "p1", NAN, 5000, 0), "out_of_bounds");
	assert_null(scen_move(s, "p1", 5000, 5000, 1000)->reason); /* inclusive */
}

static void reject_out_of_range(void **state)
{
	struct scen *s = *state;

	two_players(s);
	s->ts += 10 * SEC;
	assert_null(scen_move(s, "p2", 5050, 5000, 0)->reason);
	s->ts += SEC;
	assert_reject(scen_attack(s, "p1", "p2", "fireball"), "out_of_range"); /* 50 > 20 */
	assert_int_equal(pl(s, "p2").hp, 100);
}

static void reject_cooldown(void **state)
{
	struct scen *s = *state;

	two_players(s);
	s->ts += SEC;
	assert_null(scen_attack(s, "p1", "p2", "fireball")->reason);
	s->ts += SEC;
	assert_reject(scen_attack(s, "p1", "p2", "fireball"), "cooldown");
}

static void reject_dead(void **state)
{
	struct scen *s = *state;

	two_players(s);
	while (pl(s, "p2").alive) {
		s->ts += 3 * SEC;
		scen_attack(s, "p1", "p2", "fireball");
	}
	s->ts += SEC;
	assert_reject(scen_move(s, "p2", 5000, 5000, 0), "dead");
}

static void reject_bad_targets_and_skills(void **state)
{
	struct scen *s = *state;

	two_players(s);
	scen_register(s, "p3", "carol");
	s->ts += SEC;
	assert_reject(scen_attack(s, "p1", "p2", "kamehameha"), "unknown_skill");
	assert_reject(scen_attack(s, "p1", "p1", "punch"), "invalid_target");
	assert_reject(scen_attack(s, "p1", "nobody", "punch"), "unknown_target");
	assert_reject(scen_attack(s, "p1", "p3", "punch"), "target_offline");
}

/* ---------------------------------------------------------------- invariants */

static void random_play_keeps_every_invariant(void **state)
{
	struct scen *s = *state;
	uint64_t x = 7;
	char id[16], def[16];
	const char *skills[] = {"punch", "slash", "fireball", "nope"};
	unsigned moves = 0, hits = 0, deaths = 0, respawns = 0, rejects = 0;

	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		scen_register(s, id, id);
	}
	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned r = (unsigned)(x >> 33);
		/* Independent bits for the actor, the target and the action. */
		snprintf(id, sizeof(id), "p%u", (r >> 8) % 50);
		snprintf(def, sizeof(def), "p%u", (r >> 16) % 50);
		s->ts += (int64_t)(r % 300000);
		switch (r % 10) {
		case 0: scen_login(s, id); break;
		case 1:
			if (r % 7 == 0)
				scen_logout(s, id);
			else
				scen_login(s, id);
			break;
		case 2:
		case 3:
		case 4: {
			struct world_player p;
			if (world_player_get(s->w, id, &p))
				break;
			scen_move(s, id, p.pos.x + (double)((r >> 4) % 9) - 4,
			          p.pos.y + (double)((r >> 24) % 9) - 4, p.pos.z);
			break;
		}
		default: scen_attack(s, id, def, skills[(r >> 28) % 4]); break;
		}
		assert_valid(&s->out);
		for (size_t k = 0; k < s->out.n; k++) {
			const Mmo__Event *e = &s->out.ev[k].b.ev;

			moves += !strcmp(e->type, "world.update");
			hits += !strcmp(e->type, "combat.result") && e->combat_result->damage > 0;
			deaths += !strcmp(e->type, "world.despawn") &&
			          !strcmp(e->world_despawn->reason, "death");
			respawns += !strcmp(e->type, "world.spawn") && k + 1 < s->out.n;
			rejects += !strcmp(e->type, "world.reject");
		}
		if (!world_invariant_holds(s->w, "all", NULL, NULL, 0)) {
			char why[256];
			world_invariant_holds(s->w, "all", NULL, why, sizeof(why));
			fail_msg("after seq %llu: %s", (unsigned long long)s->seq, why);
		}
	}
	assert_int_equal(world_anomalies(s->w, NULL, NULL), 0);
	/* The game is a game: every kind of outcome happens. */
	print_message("moves %u hits %u deaths %u respawns %u rejects %u\n", moves, hits, deaths,
	              respawns, rejects);
	assert_true(moves > 1000 && hits > 1000 && deaths > 10 && respawns > 5 && rejects > 1000);
}

static void region_is_the_grid_cell(void **state)
{
	char r[32];

	(void)state;
	world_region_of(&(struct world_vec){0, 0, 0}, r, sizeof(r));
	assert_string_equal(r, "r_0_0");
	world_region_of(&(struct world_vec){499.99, 500, 0}, r, sizeof(r));
	assert_string_equal(r, "r_0_1");
	world_region_of(&(struct world_vec){10000, 10000, 0}, r, sizeof(r));
	assert_string_equal(r, "r_19_19");
	world_region_of(&(struct world_vec){-5, 1e9, 0}, r, sizeof(r));
	assert_string_equal(r, "r_0_19");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(register_creates_offline_player_at_spawn, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(register_twice_keeps_the_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(login_spawns_player_online_with_derived_id, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(logout_despawns_and_keeps_position, setup, teardown),
	    cmocka_unit_test_setup_teardown(move_changes_position_region_and_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(move_speed_is_measured_from_the_last_move, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(attack_hit_lowers_hp_by_the_damage, setup, teardown),
	    cmocka_unit_test_setup_teardown(attack_damage_follows_the_formula, setup, teardown),
	    cmocka_unit_test_setup_teardown(randomness_depends_on_seed_and_seq_only, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(death_then_respawn_after_the_delay, setup, teardown),
	    cmocka_unit_test_setup_teardown(login_after_death_respawns_once_the_delay_is_over,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(cooldown_ends_after_its_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(range_is_inclusive, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_unknown_player, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_not_logged_in, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_already_online, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_too_fast, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_out_of_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_cooldown, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(reject_bad_targets_and_skills, setup, teardown),
	    cmocka_unit_test_setup_teardown(random_play_keeps_every_invariant, setup, teardown),
	    cmocka_unit_test(region_is_the_grid_cell),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
