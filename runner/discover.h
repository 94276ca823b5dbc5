/* discover.h — which test files a run selects: PATH arguments (files as given,
 * directories searched recursively for *_test.lua and test_*.lua), sorted and
 * de-duplicated; --shard K/N slices; --shuffle order. */
#ifndef PROVIUM_DISCOVER_H
#define PROVIUM_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

struct file_list {
	char **v;
	size_t n, cap;
};

/* npaths == 0: tests/ when it is a directory, else the current directory.
 * A PATH that does not exist: -ENOENT with a message (usage error, exit 2). */
int discover_files(char *const *paths, int npaths, struct file_list *out);
/* Keeps only the files of slice k (1-based) of n: file i of the sorted list belongs
 * to slice (i % n) + 1, so the union of all slices is exactly the list. */
void discover_shard(struct file_list *fl, int k, int n);
/* Deterministic Fisher-Yates shuffle driven by seed. */
void discover_shuffle(struct file_list *fl, uint64_t seed);
void discover_free(struct file_list *fl);
/* True for names matching *_test.lua or test_*.lua. */
int discover_is_test_name(const char *base);

/* splitmix64: the deterministic generator behind --seed. */
uint64_t pv_splitmix64(uint64_t *state);

#endif
