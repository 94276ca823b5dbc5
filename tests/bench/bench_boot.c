/* bench_boot.c — VMM start-up numbers, median of RUNS runs each:
 *   1. process start -> first guest instruction: exec a fresh process that creates
 *      a VM and runs a tiny in-memory guest whose first instruction is an OUT (so
 *      its first exit is its first instruction); measured from before fork().
 *   2. test guest boot -> exit, in-process: vm_create + vm_start (ELF loader, boot
 *      params, MP table) of build/guest/exit.elf until its exit-port write is seen
 *      (the tiny in-memory guest when exit.elf has not been built).
 *   3. the same test guest as a whole `provium boot` process (exec -> exit status).
 * Usage: bench_boot BUILD_DIR   (tests/bench/run.sh passes it) */
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 11

static const uint8_t tiny[] = {0xb0, 0x2a, 0xe6, 0xf4, 0xf4}; /* mov $42,%al; out $0xf4 */

/* Child of measurement 1: prints the first-exit timestamp. */
static int child_first_insn(void)
{
	struct vm_config cfg = {.name = "bench", .memory_mib = 16};
	struct vm *vm;
	if (vm_create(&cfg, &vm)) {
		fprintf(stderr, "bench: %s\n", pv_errmsg());
		return 1;
	}
	memcpy(vm_gpa(vm, 0x1000, sizeof(tiny)), tiny, sizeof(tiny));
	struct vm_exit ex;
	if (vm_start_raw(vm, 0x1000, false) || vm_wait(vm, 10000, &ex) || ex.code != 42) {
		fprintf(stderr, "bench: tiny guest failed: %s\n", pv_errmsg());
		vm_destroy(vm);
		return 1;
	}
	printf("%" PRIu64 "\n", vm_first_exit_ns(vm));
	vm_destroy(vm);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void row(const char *what, uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%-58s %9.2f %9.2f %9.2f\n", what, v[n / 2] / 1e6, v[0] / 1e6, v[n - 1] / 1e6);
}

/* Measurement 1: fork+exec ourselves in child mode, read the child's timestamp. */
static int run_first_insn(uint64_t *out)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	uint64_t t0 = pv_now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl("/proc/self/exe", "bench_boot", "--child", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[64] = {0};
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	*out = strtoull(buf, NULL, 10) - t0;
	return 0;
}

/* Measurement 2: in-process boot of the ELF test guest (or the tiny guest). */
static int run_guest(const char *elf, uint64_t *out)
{
	struct vm_config cfg = {.name = "bench", .kernel = elf, .memory_mib = 64,
				.cmdline = "exit=0"};
	struct vm *vm;
	uint64_t t0 = pv_now_ns();
	if (vm_create(&cfg, &vm))
		return -1;
	int err;
	if (elf) {
		err = vm_start(vm);
	} else {
		memcpy(vm_gpa(vm, 0x1000, sizeof(tiny)), tiny, sizeof(tiny));
		err = vm_start_raw(vm, 0x1000, false);
	}
	struct vm_exit ex;
	if (!err)
		err = vm_wait(vm, 60000, &ex);
	*out = pv_now_ns() - t0;
	if (!err && ex.reason != VM_EXIT_PORT)
		err = -1;
	if (err)
		fprintf(stderr, "bench: guest run failed: %s %s\n", pv_errmsg(),
			err == -1 ? ex.detail : "");
	vm_destroy(vm);
	return err ? -1 : 0;
}

/* Measurement 3: `provium boot --kernel elf` as a process. */
static int run_provium_boot(const char *provium, const char *elf, uint64_t *out)
{
	uint64_t t0 = pv_now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execl(provium, "provium", "boot", "--kernel", elf, "--cmdline", "exit=0",
		      (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	*out = pv_now_ns() - t0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--child"))
		return child_first_insn();
	const char *build = argc > 1 ? argv[1] : "build";
	char elf[PATH_MAX], provium[PATH_MAX];
	snprintf(elf, sizeof(elf), "%s/guest/exit.elf", build);
	snprintf(provium, sizeof(provium), "%s/provium", build);
	bool have_elf = access(elf, R_OK) == 0;
	bool have_provium = access(provium, X_OK) == 0;

	uint64_t v[RUNS];
	char title[64];
	snprintf(title, sizeof(title), "VMM boot (%d runs; times in ms)", RUNS);
	printf("%-58s %9s %9s %9s\n", title, "median", "min", "max");
	/* One warm-up of each so page-cache and module state do not skew run 1. */
	uint64_t warm;
	run_first_insn(&warm);
	for (int i = 0; i < RUNS; i++)
		if (run_first_insn(&v[i])) {
			printf("process start -> first guest instruction: FAILED\n");
			return 1;
		}
	row("process start -> first guest instruction (tiny guest)", v, RUNS);

	const char *g = have_elf ? elf : NULL;
	run_guest(g, &warm);
	for (int i = 0; i < RUNS; i++)
		if (run_guest(g, &v[i])) {
			printf("test guest boot -> exit: FAILED\n");
			return 1;
		}
	row(have_elf ? "test guest boot -> exit (exit.elf, in-process)" :
		       "test guest boot -> exit (tiny guest; exit.elf not built)", v, RUNS);

	if (have_elf && have_provium) {
		for (int i = 0; i < RUNS; i++)
			if (run_provium_boot(provium, elf, &v[i])) {
				printf("provium boot exit.elf: FAILED\n");
				return 1;
			}
		row("`provium boot` exit.elf, whole process", v, RUNS);
	}
	return 0;
}
