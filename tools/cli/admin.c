/* admin.c - operator commands leave a trace in the log.
 *
 * Every command that changes something (mmo user role, mmo dlq retry/drop,
 * mmo views rebuild) appends one critical `admin.action` event naming the
 * command, who ran it and what it did. It is appended directly to DATA/log:
 * LMDB serialises writers across processes and the log reads its head
 * inside the write transaction, so this is safe while `mmo serve` runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "tools/cli/cli_util.h"
#include "log/evlog.h"
#include "schemas/mmo_util.h"

int cli_admin_event(const char *data, const char *command, const char *detail)
{
	struct evlog_opts o = {0};
	struct evlog_out out;
	struct evlog_in in;
	struct mmo_ev b;
	uint8_t buf[2048], rnd[8];
	char dir[4096], id[64], msg[512] = "";
	const char *actor = getenv("SUDO_USER");
	evlog *log;
	int err;

	if (!actor || !*actor)
		actor = getenv("USER");
	if (!actor || !*actor)
		actor = "operator";
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return MMO_EIO;
	snprintf(id, sizeof(id), "admin:%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	err = mmo_ev_init(&b, "admin.action", id, NULL, NULL);
	if (err)
		return err;
	b.body.admin_action.command = (char *)command;
	b.body.admin_action.actor = (char *)actor;
	b.body.admin_action.detail = (char *)detail;
	err = mmo_event_encode(&b.ev, buf, sizeof(buf), &in.len);
	if (err)
		goto fail;
	in.buf = buf;
	in.priority = MMO_PRIO_CRITICAL;
	snprintf(dir, sizeof(dir), "%s/log", data);
	o.dir = dir;
	err = evlog_open(&o, &log, msg, sizeof(msg));
	if (err)
		goto fail;
	err = evlog_append(log, &in, 1, mmo_now_us(), &out);
	if (!err)
		err = out.err;
	evlog_close(log);
	if (err)
		goto fail;
	return MMO_OK;
fail:
	fprintf(stderr, "mmo: warning: '%s' was done but could not be recorded in the log: %s\n",
	        command, msg[0] ? msg : mmo_errdesc(err));
	return err;
}
