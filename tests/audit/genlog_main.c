/* audit_genlog DATA N [DAYS]: write a generated log of N events (manual
 * large-log runs: docs/audit.md). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "gen.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: audit_genlog DATA N [DAYS]\n");
		return 2;
	}
	mkdir(argv[1], 0755); /* may exist */
	return gen_log(argv[1], strtoull(argv[2], NULL, 10), argc > 3 ? atoi(argv[3]) : 3, NULL)
	           ? 1
	           : 0;
}
