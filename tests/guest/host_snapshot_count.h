/* host_snapshot_count.h — the snapshot_count guest's side for the host tests that
 * snapshot it (host_snapshot.c, host_snapshot_warm.c): its loop's size, the hash it
 * prints for a salt, handing it the salt and checking that hash, and their scratch
 * directory's removal. */
#ifndef PROVIUM_HOST_SNAPSHOT_COUNT_H
#define PROVIUM_HOST_SNAPSHOT_COUNT_H

#include "tests/guest/host.h"

#define ITERS 300000
#define STEP 30000
#define WORDS 4096

/* The hash snapshot_count prints for `salt` (the same computation). */
static inline uint64_t expected(uint64_t salt)
{
	static uint64_t table[WORDS];
	uint64_t acc = 1, h = 14695981039346656037ull;

	memset(table, 0, sizeof(table));
	for (uint64_t i = 0; i < ITERS; i++) {
		acc = acc * 6364136223846793005ull + 1442695040888963407ull + i;
		table[i % WORDS] ^= acc;
	}
	for (uint64_t k = 0; k < WORDS; k++) {
		table[k] ^= salt * (k + 1);
		h = (h ^ table[k]) * 1099511628211ull;
	}
	return h;
}

static inline void finish_with_salt(struct guest *g, uint64_t salt)
{
	char line[64];

	guest_wait_output(g, "waiting for salt", GUEST_TIMEOUT_MS);
	snprintf(line, sizeof(line), "%lu\n", (unsigned long)salt);
	if (vm_console_input(g->vm, line, strlen(line)) < 0)
		guest_fail(g, "console input: %s", pv_errmsg());
	guest_wait_exit(g, GUEST_TIMEOUT_MS);
	snprintf(line, sizeof(line), "result=%lx", (unsigned long)expected(salt));
	guest_expect(g, line);
	if (g->ex.reason != VM_EXIT_PORT || g->ex.code != 0)
		guest_fail(g, "exit %s code %d", vm_exit_reason_name(g->ex.reason), g->ex.code);
}

/* Removes a test's scratch directory with everything in it (a group teardown). */
static inline void remove_scratch(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

#endif
