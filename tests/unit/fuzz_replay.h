/* fuzz_replay.h — runs a fuzz target (tests/fuzz/fuzz_<name>.h) on every file of
 * its corpus (tests/fuzz/<name>_corpus) and on `mutations` seeded mutants of them
 * (bytes flipped, cut, spliced), so the unit and asan tiers replay every fuzzer's
 * findings deterministically. Used by test_fuzz_corpora.c, test_proto.c and
 * test_virtqueue.c. */
#ifndef PROVIUM_TESTS_FUZZ_REPLAY_H
#define PROVIUM_TESTS_FUZZ_REPLAY_H

#include "tests/unit/src_root.h"
#include "vmm/util.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_REPLAY_MAX (64u << 10)

typedef int (*fuzz_target_fn)(const uint8_t *data, size_t size);

/* Returns how many corpus files ran, or -1 when the corpus directory is missing. */
static inline int fuzz_replay(const char *name, fuzz_target_fn fn, unsigned mutations,
			      unsigned seed)
{
	static uint8_t buf[FUZZ_REPLAY_MAX], mut[FUZZ_REPLAY_MAX];
	static size_t lens[4096];
	char dir[2200], path[2600];
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s_corpus", src_root(), name);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	/* Files in name order, so mutants are the same from run to run. */
	struct dirent **list;
	int nf = scandir(dir, &list, NULL, alphasort), n = 0;
	closedir(d);
	if (nf < 0)
		return -1;
	uint8_t *all = malloc((size_t)nf * 4096 + 1);
	for (int i = 0; i < nf; i++) {
		if (list[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			FILE *fp = fopen(path, "rb");
			size_t len = fp ? fread(buf, 1, sizeof(buf), fp) : 0;
			if (fp)
				fclose(fp);
			fn(buf, len);
			if (all && n < 4096) {
				lens[n] = PV_MIN(len, (size_t)4096);
				memcpy(all + (size_t)n * 4096, buf, lens[n]);
			}
			n++;
		}
		free(list[i]);
	}
	free(list);
	for (unsigned m = 0; all && n && m < mutations; m++) {
		unsigned pick = (unsigned)rand_r(&seed) % (unsigned)PV_MIN(n, 4096);
		size_t len = lens[pick];
		memcpy(mut, all + (size_t)pick * 4096, len);
		switch (rand_r(&seed) % 3) {
		case 0: /* flip some bytes */
			for (int k = 0; len && k < 1 + rand_r(&seed) % 8; k++)
				mut[(size_t)rand_r(&seed) % len] ^= (uint8_t)(1 + rand_r(&seed) % 255);
			break;
		case 1: /* cut */
			len = len ? (size_t)rand_r(&seed) % len : 0;
			break;
		default: { /* splice the tail of another input */
			unsigned other = (unsigned)rand_r(&seed) % (unsigned)PV_MIN(n, 4096);
			size_t at = len ? (size_t)rand_r(&seed) % len : 0;
			size_t take = PV_MIN(lens[other], (size_t)4096 - at);
			memcpy(mut + at, all + (size_t)other * 4096, take);
			len = at + take;
		}
		}
		fn(mut, len);
	}
	free(all);
	return n;
}

#endif
