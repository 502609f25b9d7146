/* cli_run.h - run `mmo` (or any program) as a child and capture its output. */
#ifndef MMO_AUDIT_CLI_RUN_H
#define MMO_AUDIT_CLI_RUN_H

#include <stddef.h>

/* The output of one run: NUL-terminated, the caller frees with run_free(). */
struct run {
	int status; /* exit status, or -1 if killed / not run */
	char *out;  /* stdout */
	char *err;  /* stderr */
};

/* Run argv (argv[0] a path; NULL-terminated) with a 50 s bound. */
void run_argv(char *const argv[], struct run *r);

/* Run `mmo` with the given arguments (NULL-terminated list). */
void run_mmo(struct run *r, ...);

void run_free(struct run *r);

/* Number of lines in s. */
size_t run_lines(const char *s);

/* Read a whole file (NUL-terminated; *len may be NULL). NULL on error. */
char *slurp(const char *path, size_t *len);

#endif
