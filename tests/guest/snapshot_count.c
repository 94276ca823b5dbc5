/* snapshot_count.c — a guest that is snapshotted mid-work (host_snapshot.c): it
 * runs a PRNG for "iters=N" rounds, xoring each value into a 32 KiB table and
 * printing "progress I" every "step=S" rounds, then asks for a salt on the serial
 * port, mixes it into the table and prints "result=<hash>". The state that matters
 * lives in registers (the loop) and in guest RAM (the table), so a restore that
 * loses either prints the wrong hash; host_snapshot.c computes the right one. */
#include "guest.h"

#define WORDS 4096

static volatile uint64_t table[WORDS];

int main(void)
{
	uint64_t iters = 3000, step = 500, acc = 1;
	char line[32];

	cmdline_u64("iters", &iters);
	cmdline_u64("step", &step);
	printf("snapshot_count: start\n");
	for (uint64_t i = 0; i < iters; i++) {
		acc = acc * 6364136223846793005ull + 1442695040888963407ull + i;
		table[i % WORDS] ^= acc;
		if ((i + 1) % step == 0)
			printf("progress %lu\n", i + 1);
	}
	printf("waiting for salt\n");
	if (serial_readline(line, sizeof(line), 600000) < 0)
		abort_test("no salt arrived");
	uint64_t salt = strtou64(line, NULL), h = 14695981039346656037ull;
	for (uint64_t k = 0; k < WORDS; k++) {
		table[k] ^= salt * (k + 1);
		h = (h ^ table[k]) * 1099511628211ull;
	}
	printf("result=%lx\n", h);
	return 0;
}
