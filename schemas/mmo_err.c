/* mmo_err.c - names and descriptions of the project's error codes. */
#include "schemas/mmo_err.h"

static const struct {
	const char *name;
	const char *desc;
} errs[MMO_ERR_COUNT] = {
    [MMO_OK] = {"ok", "success"},
    [MMO_EINVAL] = {"invalid", "invalid argument or input"},
    [MMO_EMALFORMED] = {"malformed", "bytes do not decode as the expected message"},
    [MMO_EBADTYPE] = {"bad_type", "unknown event type or body that does not match it"},
    [MMO_EMISSING] = {"missing_field", "a required field is missing"},
    [MMO_EBADID] = {"bad_id", "an id has the wrong shape or length"},
    [MMO_ENONFINITE] = {"non_finite", "a number is NaN or infinite"},
    [MMO_ETOOBIG] = {"too_big", "record or request exceeds the size limit"},
    [MMO_ECONFLICT] = {"conflict", "event_id already logged with a different payload"},
    [MMO_EBUSY] = {"busy", "queue full, retry later"},
    [MMO_EFULL] = {"full", "log storage is full, writes are refused"},
    [MMO_EIO] = {"io", "storage or system I/O error"},
    [MMO_ENOMEM] = {"no_memory", "out of memory"},
    [MMO_ENOTFOUND] = {"not_found", "no such record"},
    [MMO_EVERSION] = {"version", "data has a newer format version than this build"},
    [MMO_ECORRUPT] = {"corrupt", "stored data fails its integrity checks"},
    [MMO_ETIMEOUT] = {"timeout", "no answer in time"},
    [MMO_ECLOSED] = {"closed", "closed or shutting down"},
    [MMO_EPROTO] = {"protocol", "wrong framing or unknown operation"},
    [MMO_EPRIORITY] = {"bad_priority", "priority must be 1 (critical) to 4 (low)"},
    [MMO_EUNAVAIL] = {"unavailable", "a dependency is unavailable"},
    [MMO_EREWIND] = {"rewind", "the store's checkpoint is not the one expected"},
    [MMO_ERACE] = {"race", "a concurrent change won an optimistic check, try again"},
};

const char *mmo_strerror(int err)
{
	if (err < 0 || err >= MMO_ERR_COUNT || !errs[err].name)
		return "unknown";
	return errs[err].name;
}

const char *mmo_errdesc(int err)
{
	if (err < 0 || err >= MMO_ERR_COUNT || !errs[err].desc)
		return "unknown error";
	return errs[err].desc;
}
