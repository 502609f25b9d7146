/* wsmsg.c - a client's WebSocket message, parsed and checked against the
 * same schemas as the REST bodies (gw_fields_check), with no side effects. */
#include <stdio.h>
#include <string.h>

#include "gw.h"
#include "schemas/mmo_util.h"

static int fail(struct gw_ws_msg *m, const char *code, const char *msg)
{
	m->code = code;
	snprintf(m->message, sizeof(m->message), "%s", msg);
	return -1;
}

int gw_ws_parse(const char *data, size_t len, double coord_max, struct gw_ws_msg *m)
{
	const struct gw_field region_f[] = {{"region_id", GW_FT_ID, 0, 0, 0, 0}};
	const struct gw_field move_f[] = {
	    {"x", GW_FT_NUMBER, -coord_max, coord_max, 0, 0},
	    {"y", GW_FT_NUMBER, -coord_max, coord_max, 0, 0},
	    {"z", GW_FT_NUMBER, -coord_max, coord_max, 0, 0},
	};
	const struct gw_field attack_f[] = {
	    {"defender_id", GW_FT_ID, 0, 0, 0, 0},
	    {"skill_id", GW_FT_ID, 0, 0, 0, 0},
	};
	const struct gw_field *f;
	struct gw_bad bad;
	json_t *o = NULL, *ref;
	const char *op;
	size_t nf;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (gw_json_depth_ok(data, len, GW_JSON_DEPTH_MAX))
		o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		rc = fail(m, "bad_message", "a message must be a JSON object");
		goto out;
	}
	op = json_string_value(json_object_get(o, "op"));
	ref = json_object_get(o, "ref");
	if (ref) {
		if (!json_is_string(ref) ||
		    json_string_length(ref) != strlen(json_string_value(ref)) ||
		    !mmo_id_valid(json_string_value(ref))) {
			rc = fail(m, "bad_ref", "ref must be 1..64 of [A-Za-z0-9_.:-]");
			goto out;
		}
		snprintf(m->ref, sizeof(m->ref), "%s", json_string_value(ref));
	}
	if (!op) {
		rc = fail(m, "bad_op",
		          "op must be \"subscribe\", \"unsubscribe\", \"move\" or \"attack\"");
		goto out;
	}
	if (!strcmp(op, "subscribe") || !strcmp(op, "unsubscribe")) {
		m->op = op[0] == 's' ? GW_WS_SUBSCRIBE : GW_WS_UNSUBSCRIBE;
		f = region_f;
		nf = 1;
	} else if (!strcmp(op, "move")) {
		m->op = GW_WS_MOVE;
		f = move_f;
		nf = 3;
	} else if (!strcmp(op, "attack")) {
		m->op = GW_WS_ATTACK;
		f = attack_f;
		nf = 2;
	} else {
		rc = fail(m, "bad_op",
		          "op must be \"subscribe\", \"unsubscribe\", \"move\" or \"attack\"");
		goto out;
	}
	if ((m->op == GW_WS_MOVE || m->op == GW_WS_ATTACK) && !m->ref[0]) {
		rc = fail(m, "missing_field", "ref is required");
		goto out;
	}
	json_object_del(o, "op");
	json_object_del(o, "ref");
	if (!gw_fields_check(o, f, nf, &bad)) {
		/* The REST codes, but a missing or bad region keeps its old name. */
		const char *code = bad.code;

		if (f == region_f &&
		    (!strcmp(code, "missing_field") || !strcmp(code, "wrong_type")))
			code = "bad_id";
		rc = fail(m, code, bad.message);
		goto out;
	}
	switch (m->op) {
	case GW_WS_SUBSCRIBE:
	case GW_WS_UNSUBSCRIBE:
		snprintf(m->region, sizeof(m->region), "%s",
		         json_string_value(json_object_get(o, "region_id")));
		break;
	case GW_WS_MOVE:
		m->x = json_number_value(json_object_get(o, "x"));
		m->y = json_number_value(json_object_get(o, "y"));
		m->z = json_number_value(json_object_get(o, "z"));
		break;
	case GW_WS_ATTACK:
		snprintf(m->defender, sizeof(m->defender), "%s",
		         json_string_value(json_object_get(o, "defender_id")));
		snprintf(m->skill, sizeof(m->skill), "%s",
		         json_string_value(json_object_get(o, "skill_id")));
		break;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}
