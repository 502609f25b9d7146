/* routes.c - the route table: one civetweb handler takes every request
 * relayed by the event loop and dispatches on the exact method and path to
 * the handlers (auth.c, api.c); http.c holds the plumbing they share. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "schemas/mmo_util.h"

typedef int handler_fn(struct gw_req *r);

static int h_health(struct gw_req *r)
{
	json_t *o = NULL;
	int status = gw_health_report(r->g, &o);

	return gw_reply_json(r, status, o, status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static int h_metrics(struct gw_req *r)
{
	char *text;
	size_t len;
	int rc;

	if (gw_metrics_render(r->g, &text, &len))
		return gw_reply_err(r, 500, "internal", NULL, "out of memory");
	r->body_read = true;
	rc = gw_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
	free(text);
	return rc;
}

static int h_ws_plain(struct gw_req *r)
{
	return gw_reply_err(r, 400, "websocket_required", NULL,
	                    "/ws takes a WebSocket upgrade (GET with Upgrade: websocket)");
}

struct route {
	const char *path; /* exact, or with one "{id}" segment */
	const char *method;
	enum gw_route id;
	handler_fn *fn;
};

static const struct route routes[] = {
    {"/api/auth/register", "POST", GW_R_REGISTER, gw_h_register},
    {"/api/auth/login", "POST", GW_R_LOGIN, gw_h_login},
    {"/api/auth/logout", "POST", GW_R_LOGOUT, gw_h_logout},
    {"/api/players/move", "POST", GW_R_MOVE, gw_h_move},
    {"/api/combat/attack", "POST", GW_R_ATTACK, gw_h_attack},
    {"/api/players/{id}", "GET", GW_R_PLAYER, gw_h_player},
    {"/api/regions/{id}/players", "GET", GW_R_REGION, gw_h_region},
    {"/api/events", "GET", GW_R_EVENTS, gw_h_events},
    {"/health", "GET", GW_R_HEALTH, h_health},
    {"/metrics", "GET", GW_R_METRICS, h_metrics},
    {"/ws", "GET", GW_R_WS, h_ws_plain},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Does path match pattern? An {id} segment takes one path segment (any
 * bytes but '/', at most MMO_ID_MAX + 1 kept in id for validation). */
static bool match(const char *pattern, const char *path, char *id, size_t idcap)
{
	const char *hole = strstr(pattern, "{id}");
	size_t pre, n;

	if (!hole)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(hole - pattern);
	if (strncmp(pattern, path, pre))
		return false;
	path += pre;
	n = strcspn(path, "/");
	if (n == 0 || strcmp(hole + 4, path + n))
		return false;
	snprintf(id, idcap, "%.*s", (int)(n < idcap ? n : idcap - 1), path);
	if (n >= idcap)
		id[idcap - 1] = 0, id[idcap - 2] = '!'; /* too long: fails validation */
	return true;
}

int gw_http_handler(struct mg_connection *c, void *cbdata)
{
	gw *g = cbdata;
	struct gw_req r = {g, c, mg_get_request_info(c), GW_R_OTHER, 0, {0}, false, {0}};
	const char *path = r.ri->local_uri ? r.ri->local_uri : "";
	const char *method = r.ri->request_method ? r.ri->request_method : "";
	int64_t t0 = mmo_mono_us();
	const struct route *hit = NULL;
	char allow[64] = "";

	for (size_t i = 0; i < NROUTES; i++) {
		char id[MMO_ID_MAX + 2];

		if (!match(routes[i].path, path, id, sizeof(id)))
			continue;
		/* "/api/players/move" is also "/api/players/{id}": exact wins. */
		if (strchr(routes[i].path, '{') && allow[0])
			continue;
		r.route = routes[i].id;
		if (!strcmp(routes[i].method, method)) {
			hit = &routes[i];
			memcpy(r.id, id, sizeof(r.id));
			break;
		}
		snprintf(allow, sizeof(allow), "%s", routes[i].method);
	}
	if (atomic_load(&g->stopping)) {
		gw_reply_retry(&r, 503, 1, "unavailable", "the gateway is stopping");
	} else if (hit) {
		if (strchr(hit->path, '{') && !mmo_id_valid(r.id)) {
			r.body_read = r.ri->content_length <= 0;
			gw_reply_err(&r, 400, "bad_id", "id",
			             "the id must be 1..%d of [A-Za-z0-9_.:-]", MMO_ID_MAX);
		} else {
			if (!strcmp(hit->method, "GET"))
				r.body_read = r.ri->content_length <= 0;
			hit->fn(&r);
		}
	} else if (allow[0]) {
		char extra[96];

		snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
		r.body_read = r.ri->content_length <= 0;
		gw_reply_err_extra(&r, 405, extra, "method_not_allowed",
		                   "%s is not allowed here; use %s", method, allow);
	} else {
		r.body_read = r.ri->content_length <= 0;
		gw_reply_err(&r, 404, "not_found", NULL, "no such resource");
	}
	if (!r.status)
		gw_reply_err(&r, 500, "internal", NULL, "no reply");
	gw_metrics_request(&g->m, r.route, r.status, mmo_mono_us() - t0);
	return r.status;
}
