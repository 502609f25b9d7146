/* fuzz_replay.c - run a libFuzzer target without libFuzzer, in ctest.
 *
 *   fuzz_replay CORPUS_DIR [N]
 * feeds every file of the corpus to LLVMFuzzerTestOneInput, then N (default
 * 20000) deterministic mutations of them (bit flips, truncations, splices,
 * inserted bytes), so the sanitizer build checks the parsers on every CI
 * run. Coverage-guided fuzzing is still done by hand with clang
 * -fsanitize=fuzzer (see each target's header). Prints "N passed, 0 failed".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUTS 256
#define MAX_LEN    (70 * 1024)

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	static uint8_t buf[MAX_LEN];
	uint8_t *in[MAX_INPUTS];
	size_t len[MAX_INPUTS], n = 0;
	unsigned long runs = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000, done = 0;
	struct dirent *d;
	DIR *dir;

	if (argc < 2) {
		fprintf(stderr, "usage: fuzz_replay CORPUS_DIR [N]\n");
		return 2;
	}
	dir = opendir(argv[1]);
	if (!dir) {
		fprintf(stderr, "fuzz_replay: cannot open %s\n", argv[1]);
		return 1;
	}
	while ((d = readdir(dir)) && n < MAX_INPUTS) {
		char path[4096];
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], d->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		in[n] = malloc(MAX_LEN);
		len[n] = in[n] ? fread(in[n], 1, MAX_LEN, f) : 0;
		fclose(f);
		if (in[n]) {
			LLVMFuzzerTestOneInput(in[n], len[n]);
			n++;
			done++;
		}
	}
	closedir(dir);
	if (n == 0) {
		fprintf(stderr, "fuzz_replay: empty corpus %s\n", argv[1]);
		return 1;
	}
	for (unsigned long r = 0; r < runs; r++) {
		size_t k = next() % n, l = len[k];

		memcpy(buf, in[k], l);
		switch (next() % 5) {
		case 0: /* flip a few bits */
			for (int i = 0; l && i < 1 + (int)(next() % 4); i++)
				buf[next() % l] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* truncate */
			l = l ? next() % l : 0;
			break;
		case 2: { /* splice another input's tail */
			size_t o = next() % n, cut = l ? next() % l : 0, from = len[o] ? next() % len[o] : 0;
			size_t add = len[o] - from;

			if (cut + add > MAX_LEN)
				add = MAX_LEN - cut;
			memcpy(buf + cut, in[o] + from, add);
			l = cut + add;
			break;
		}
		case 3: /* insert random bytes */
			for (int i = 0; l < MAX_LEN && i < 1 + (int)(next() % 8); i++) {
				size_t at = l ? next() % l : 0;

				memmove(buf + at + 1, buf + at, l - at);
				buf[at] = (uint8_t)next();
				l++;
			}
			break;
		default: /* repeat a byte run: deep nesting, long strings */
			for (size_t i = 0, reps = next() % 2000; l < MAX_LEN && i < reps; i++) {
				uint8_t b = l ? buf[next() % l] : '[';

				buf[l++] = b;
			}
			break;
		}
		LLVMFuzzerTestOneInput(buf, l);
		done++;
	}
	for (size_t i = 0; i < n; i++)
		free(in[i]);
	printf("%lu passed, 0 failed\n", done);
	return 0;
}
