/* step.c - one event through the world: a fact is applied, an intent is
 * decided (rules.c) and its outcomes applied (world.c). The one place that
 * joins the two, so neither depends on the other.
 */
#include "world_int.h"

int world_step(world *w, const Mmo__Event *ev, struct world_outcome *out)
{
	struct world_outcome local;
	struct world_outcome *o = out ? out : &local;
	int err = MMO_OK;

	if (!w || !ev)
		return MMO_EINVAL;
	o->n = 0;
	o->reason = NULL;
	switch (world_kind(ev)) {
	case WORLD_FACT: err = world_apply_fact(w, ev); break;
	case WORLD_INTENT:
		err = world_decide(w, ev, o);
		for (size_t i = 0; !err && i < o->n; i++)
			err = world_apply_outcome(w, &o->ev[i].b.ev, ev);
		break;
	default: break;
	}
	if (ev->seq > w->seq)
		w->seq = ev->seq;
	return err;
}
