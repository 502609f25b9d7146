/* accounts.h - player accounts in LMDB and password hashing (a leaf). */
#ifndef MMO_GW_ACCOUNTS_H
#define MMO_GW_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h"

#define GW_USER_MIN 3
#define GW_USER_MAX 32
#define GW_PW_MIN   8
#define GW_PW_MAX   128
#define GW_ROLE_MAX 15
#define GW_HASH_MAX 128 /* crypto_pwhash_STRBYTES */

struct gw_account {
	char username[GW_USER_MAX + 1];
	char player_id[MMO_ID_MAX + 1];
	char role[GW_ROLE_MAX + 1];
	char hash[GW_HASH_MAX];
	uint64_t reg_seq; /* seq of its player.register in the log; 0 = not yet */
	int64_t created_us;
};

typedef struct gw_accts gw_accts;
int gw_accts_open(const char *data_dir, gw_accts **out, char *err, size_t errlen);
void gw_accts_close(gw_accts *a);
/* MMO_OK, MMO_ECONFLICT (username taken), MMO_EIO. */
int gw_accts_create(gw_accts *a, const struct gw_account *acc);
/* MMO_OK, MMO_ENOTFOUND, MMO_EIO, MMO_ECORRUPT. */
int gw_accts_get(gw_accts *a, const char *username, struct gw_account *out);
int gw_accts_get_by_player(gw_accts *a, const char *player_id, struct gw_account *out);
/* Rewrite an existing account (role, reg_seq). MMO_ENOTFOUND, MMO_EIO. */
int gw_accts_update(gw_accts *a, const struct gw_account *acc);
bool gw_username_valid(const char *s, size_t len);
bool gw_role_valid(const char *s);
/* Argon2id (interactive limits). MMO_OK or MMO_ENOMEM. */
int gw_pw_hash(const char *pw, size_t len, char out[GW_HASH_MAX]);
bool gw_pw_verify(const char *hash, const char *pw, size_t len);
void gw_new_player_id(char out[MMO_ID_MAX + 1]);
void gw_random_hex(char *out, size_t nbytes); /* 2*nbytes chars + NUL */

#endif
