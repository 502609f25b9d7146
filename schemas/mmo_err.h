/* mmo_err.h - the one error enum of the project.
 *
 * Every public function that can fail returns an int that is MMO_OK (0) or
 * one of these codes. Library errors (MDB_*, zmq errno, bson_error_t, redis
 * replies) are translated to these at the module edge.
 *
 * The numeric values are part of the ingest wire protocol (docs/protocol.md):
 * add new codes at the end, never renumber.
 */
#ifndef MMO_ERR_H
#define MMO_ERR_H

enum mmo_err {
	MMO_OK = 0,
	MMO_EINVAL = 1,     /* bad argument or malformed input */
	MMO_EMALFORMED = 2, /* bytes that do not decode (protobuf, frame) */
	MMO_EBADTYPE = 3,   /* unknown event type, or body does not match */
	MMO_EMISSING = 4,   /* a required field is missing */
	MMO_EBADID = 5,     /* an id of the wrong shape or length */
	MMO_ENONFINITE = 6, /* NaN or infinite coordinate or number */
	MMO_ETOOBIG = 7,    /* record or request larger than the limit */
	MMO_ECONFLICT = 8,  /* event_id already in the log with another payload */
	MMO_EBUSY = 9,      /* queue full: retry later */
	MMO_EFULL = 10,     /* the log's storage map is full: writes refused */
	MMO_EIO = 11,       /* storage or system I/O failure */
	MMO_ENOMEM = 12,    /* out of memory */
	MMO_ENOTFOUND = 13, /* no such record */
	MMO_EVERSION = 14,  /* data written by a newer format version */
	MMO_ECORRUPT = 15,  /* stored data fails its checks */
	MMO_ETIMEOUT = 16,  /* no answer in time */
	MMO_ECLOSED = 17,   /* the peer or handle is closed / shutting down */
	MMO_EPROTO = 18,    /* wrong framing or unknown operation */
	MMO_EPRIORITY = 19, /* priority outside 1..4 */
	MMO_EUNAVAIL = 20,  /* a dependency is unavailable */
	MMO_EREWIND = 21,   /* a store's checkpoint is not the one expected */
	MMO_ERACE = 22,     /* an optimistic check lost a race: try again at once */
	MMO_ERR_COUNT
};

/* A static, lowercase, stable name for the code ("conflict", "busy", ...),
 * used in logs, JSON error bodies and the wire protocol documentation.
 * Unknown values give "unknown". Never NULL; the caller must not free it. */
const char *mmo_strerror(int err);

/* A one-line human explanation of the code. Static, never NULL. */
const char *mmo_errdesc(int err);

#endif
