/* standin_journal.c - mongo-standin: the journal file: appending changes, replaying them at start
 * (see mongo_standin.h). */
#include "mongo_standin.h"

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "mongo-standin: journal write: %s\n", strerror(errno));
			exit(2);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Appends one change to the journal: o is the kind, d its payload. */
void journal(char o, const struct db *db, const struct coll *c, const bson_t *d)
{
	bson_t rec = BSON_INITIALIZER;
	char op[2] = {o, 0};

	if (S.journal_fd < 0)
		return;
	BSON_APPEND_UTF8(&rec, "o", op);
	if (db)
		BSON_APPEND_UTF8(&rec, "db", db->name);
	if (c)
		BSON_APPEND_UTF8(&rec, "c", c->name);
	if (d)
		BSON_APPEND_DOCUMENT(&rec, "d", d);
	write_all(S.journal_fd, bson_get_data(&rec), rec.len);
	bson_destroy(&rec);
}

void journal_id(char o, const struct coll *c, const bson_t *doc)
{
	bson_t d = BSON_INITIALIZER;
	bson_iter_t id;

	if (S.journal_fd < 0)
		return;
	if (doc_id(doc, &id))
		bson_append_iter(&d, "_id", 3, &id);
	journal(o, c->db, c, &d);
	bson_destroy(&d);
}

/* ---- journal replay ----------------------------------------------------- */

static void replay_one(const bson_t *rec)
{
	const char *o = field_str(rec, "o"), *dbn = field_str(rec, "db"), *cn = field_str(rec, "c");
	struct db *db = dbn ? db_open(dbn) : NULL;
	struct coll *c = db && cn ? coll_open(db, cn, NULL) : NULL;
	bson_t d;
	bson_iter_t id;
	struct doc *doc = NULL;
	bool hd = field_doc(rec, "d", &d) == 1;

	if (!o)
		return;
	if (c && hd && doc_id(&d, &id))
		doc = coll_find_id(c, &id);
	switch (o[0]) {
	case 'i':
		if (c && hd && !doc && doc_id(&d, &id))
			doc_insert(c, bson_copy(&d));
		break;
	case 'r':
		if (doc)
			doc_replace(c, doc, bson_copy(&d));
		break;
	case 'd':
		if (doc)
			doc_delete(c, doc);
		break;
	case 'D':
		if (c)
			coll_drop(c);
		break;
	case 'X':
		if (db)
			db_drop(db);
		break;
	case 'x':
		if (c && hd) {
			c->indexes = bson_realloc(c->indexes, (c->nindexes + 1) * sizeof(bson_t *));
			c->indexes[c->nindexes++] = bson_copy(&d);
		}
		break;
	case 'y':
		for (size_t i = 0; c && hd && i < c->nindexes; i++)
			if (field_str(&d, "n") &&
			    !strcmp(field_str(c->indexes[i], "name"), field_str(&d, "n"))) {
				bson_destroy(c->indexes[i]);
				memmove(&c->indexes[i], &c->indexes[i + 1],
				        (c->nindexes - i - 1) * sizeof(*c->indexes));
				c->nindexes--;
				break;
			}
		break;
	case 'R': reset_all(); break;
	}
}

/* Replays path into memory, cuts a torn tail, and opens it for appending. */
int journal_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0, n = 0, records = 0;

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "mongo-standin: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (st.st_size > 0) {
		buf = bson_malloc((size_t)st.st_size);
		while (n < (size_t)st.st_size) {
			ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);

			if (got <= 0)
				break;
			n += (size_t)got;
		}
	}
	while (off + 4 <= n) {
		uint32_t len;
		bson_t rec;

		memcpy(&len, buf + off, 4);
		len = BSON_UINT32_FROM_LE(len);
		if (len < 5 || len > n - off || !bson_init_static(&rec, buf + off, len) ||
		    !doc_ok(&rec))
			break;
		replay_one(&rec);
		off += len;
		records++;
	}
	bson_free(buf);
	if (off != n && ftruncate(fd, (off_t)off) != 0) {
		fprintf(stderr, "mongo-standin: truncating %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	if (records)
		fprintf(stderr, "mongo-standin: replayed %zu journal records from %s\n", records,
		        path);
	return fd;
}
