/* bench_snapshot.c — snapshot save and restore time against guest RAM size
 * (128 MiB, 512 MiB, 2 GiB) with the snapshot_count test guest, median of RUNS:
 *   save        vm_snapshot of the running guest (pause + state + memory file)
 *   restore     vm_restore until it returns (VM created, devices and state loaded,
 *               vCPUs running)
 *   restore->out  vm_restore until the restored guest prints its next line
 * each for a guest that touched little memory ("touched") and for one whose whole
 * RAM above 16 MiB holds data ("full": the host fills it before boot), then
 * cold boot (vm_create + vm_start until the guest's first line) against restore.
 * Usage: bench_snapshot BUILD_DIR   (tests/bench/run.sh passes it) */
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNS 3

static char elf[4096], work[256];

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double med_ms(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2] / 1e6;
}

/* Waits until the console holds more than `have` bytes; returns the time. */
static int wait_output(struct vm *vm, size_t have, uint64_t *when)
{
	static char buf[1 << 16];
	for (int i = 0; i < 200000; i++) {
		if (vm_console_log(vm, buf, sizeof(buf)) > have) {
			*when = pv_now_ns();
			return 0;
		}
		usleep(50);
	}
	fprintf(stderr, "bench_snapshot: the guest printed nothing\n");
	return -1;
}

static int boot(unsigned mib, bool fill, struct vm **out, uint64_t *t_boot)
{
	struct vm_config cfg = {
		.name = "bench", .kernel = elf, .memory_mib = mib,
		.cmdline = "iters=4000000000 step=2000",
	};
	uint64_t t0 = pv_now_ns(), t1;
	if (vm_create(&cfg, out) < 0)
		return -1;
	if (fill)
		memset((char *)vm_mem_base(*out) + (16 << 20), 0x5a, ((uint64_t)mib - 16) << 20);
	if (vm_start(*out) < 0 || wait_output(*out, 0, &t1) < 0)
		return -1;
	*t_boot = t1 - t0;
	return 0;
}

static uint64_t du(const char *dir)
{
	char p[600];
	struct stat st;
	snprintf(p, sizeof(p), "%s/memory", dir);
	return stat(p, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static int one_size(unsigned mib, bool fill, double *boot_ms)
{
	uint64_t save[RUNS], rest[RUNS], rest_out[RUNS], bootv[RUNS], disk = 0;
	char dir[512], cmd[600];
	for (int r = 0; r < RUNS; r++) {
		struct vm *vm, *vm2;
		uint64_t t0, t1;
		snprintf(dir, sizeof(dir), "%s/snap-%u-%d-%d", work, mib, fill, r);
		if (boot(mib, fill, &vm, &bootv[r]) < 0)
			goto fail;
		usleep(100000);
		t0 = pv_now_ns();
		if (vm_snapshot(vm, dir) < 0)
			goto fail;
		save[r] = pv_now_ns() - t0;
		vm_destroy(vm);
		disk = du(dir);
		struct vm_restore_opts o = {.name = "bench-restored"};
		t0 = pv_now_ns();
		if (vm_restore(dir, &o, &vm2) < 0)
			goto fail;
		t1 = pv_now_ns();
		rest[r] = t1 - t0;
		uint64_t t2;
		if (wait_output(vm2, 0, &t2) < 0)
			goto fail;
		rest_out[r] = t2 - t0;
		vm_destroy(vm2);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_snapshot: could not remove %s\n", dir);
	}
	*boot_ms = med_ms(bootv, RUNS);
	printf("%6u MiB  %-8s %10.2f %10.2f %14.2f %12.1f\n", mib, fill ? "full" : "touched",
	       med_ms(save, RUNS), med_ms(rest, RUNS), med_ms(rest_out, RUNS), disk / 1048576.0);
	fflush(stdout);
	return 0;
fail:
	fprintf(stderr, "bench_snapshot: %u MiB: %s\n", mib, pv_errmsg());
	return -1;
}

int main(int argc, char **argv)
{
	const char *build = argc > 1 ? argv[1] : "build";
	static const unsigned sizes[] = {128, 512, 2048};
	double boot_ms[3] = {0};
	int status = 0;
	snprintf(elf, sizeof(elf), "%s/guest/snapshot_count.elf", build);
	if (access(elf, R_OK) != 0 || access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("skipped: needs /dev/kvm and %s (make guest)\n", elf);
		return 0;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(work, sizeof(work), "%s/provium-bench-snap-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(work)) {
		perror("mkdtemp");
		return 1;
	}
	printf("snapshot save/restore, median of %d, ms (snapshot dir in %s)\n", RUNS, work);
	printf("%10s  %-8s %10s %10s %14s %12s\n", "RAM", "data", "save", "restore",
	       "restore->out", "memory MiB");
	for (int i = 0; i < 3; i++)
		for (int fill = 0; fill < 2; fill++) {
			double b;
			if (one_size(sizes[i], fill, &b) < 0)
				status = 1;
			else if (!fill)
				boot_ms[i] = b;
		}
	printf("cold boot (vm_create + vm_start -> first guest line), ms:");
	for (int i = 0; i < 3; i++)
		printf("  %u MiB %.2f", sizes[i], boot_ms[i]);
	printf("\n");
	rmdir(work);
	return status;
}
