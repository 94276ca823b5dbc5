/* host.h — helpers for the host-side guest tests (tests/guest/host_*.c, cmocka):
 * boot build/guest/<name>.elf under the real VMM, wait for output or the exit, and
 * assert on the console log, printing the whole log when an assertion fails.
 * Header-only because each host test is one binary built from one .c file.
 *
 *   static struct guest g;
 *   guest_boot(&g, "exit", "exit=7", 64, 1);
 *   guest_wait_exit(&g, GUEST_TIMEOUT_MS);
 *   guest_expect_exit(&g, 7);
 *   guest_expect(&g, "exit: code 7");
 * and register the test with cmocka_unit_test_teardown(fn, guest_teardown) so the
 * VM is destroyed even when an assertion fails. */
#ifndef PROVIUM_TESTS_GUEST_HOST_H
#define PROVIUM_TESTS_GUEST_HOST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/util.h"
#include "vmm/vmm.h"

/* Guest code runs slowly on PVM hosts (ENVIRONMENT.md): be generous. */
#define GUEST_TIMEOUT_MS 60000

struct guest {
	struct vm *vm;
	const char *name;
	struct vm_exit ex;
	bool exited;
	char log[1 << 16];
	size_t log_len;
};

static struct guest *guest_current;

/* <build>/guest/<name>.elf for the build tree this binary lives in
 * (<build>/tests/guest/host_*), else $PROVIUM_BUILD, else "build". */
static inline const char *guest_elf_path(const char *name)
{
	static char path[1024];
	char exe[768];
	const char *b = getenv("PROVIUM_BUILD");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *p;

	if (n > 0) {
		exe[n] = 0;
		p = strstr(exe, "/tests/guest/");
		if (p) {
			*p = 0;
			snprintf(path, sizeof(path), "%s/guest/%s.elf", exe, name);
			if (access(path, R_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/guest/%s.elf", b && *b ? b : "build", name);
	return path;
}

static inline void guest_fetch_log(struct guest *g)
{
	if (g->vm)
		g->log_len = vm_console_log(g->vm, g->log, sizeof(g->log) - 1);
	g->log[g->log_len] = 0;
}

/* The console log as TAP comments, so it shows under a failing test. */
static inline void guest_print_log(struct guest *g)
{
	const char *p = g->log;

	guest_fetch_log(g);
	printf("# --- console of guest %s (%zu bytes) ---\n", g->name, g->log_len);
	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		if (n && p[n - 1] == '\r')
			n--;
		printf("#   %.*s\n", n, p);
		p += nl ? (size_t)(nl - p) + 1 : strlen(p);
	}
	if (g->exited)
		printf("# --- exit: %s code %d %s\n", vm_exit_reason_name(g->ex.reason),
		       g->ex.code, g->ex.detail);
	fflush(stdout);
}

#define guest_fail(g, ...) do { guest_print_log(g); fail_msg(__VA_ARGS__); } while (0)

/* Skips (with the reason) when this host has no usable /dev/kvm. */
static inline void guest_require_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("# /dev/kvm: %s: guest tests need KVM\n", strerror(errno));
		skip();
	}
	close(fd);
}

/* Creates (not starts) g's VM from cfg (cfg->name is the guest's name); g becomes
 * guest_current. Skips without KVM; fails when the guest ELF or the VM is missing. */
static inline void guest_create(struct guest *g, const struct vm_config *cfg)
{
	guest_require_kvm();
	memset(g, 0, sizeof(*g));
	g->name = cfg->name;
	guest_current = g;
	if (access(cfg->kernel, R_OK) != 0)
		fail_msg("%s is missing: `make guest` builds it", cfg->kernel);
	if (vm_create(cfg, &g->vm) < 0)
		fail_msg("vm_create(%s): %s", cfg->name, pv_errmsg());
}

static inline void guest_start(struct guest *g)
{
	if (vm_start(g->vm) < 0)
		guest_fail(g, "vm_start(%s): %s", g->name, pv_errmsg());
}

static inline void guest_boot(struct guest *g, const char *name, const char *cmdline,
		       unsigned memory_mib, unsigned cpus)
{
	struct vm_config cfg = {
		.name = name, .kernel = guest_elf_path(name), .cmdline = cmdline,
		.memory_mib = memory_mib, .cpus = cpus,
	};

	guest_create(g, &cfg);
	guest_start(g);
}

/* Waits for the guest to exit; a guest still running after timeout_ms is stopped
 * and the test fails with its console. */
static inline void guest_wait_exit(struct guest *g, int timeout_ms)
{
	int r = vm_wait(g->vm, timeout_ms, &g->ex);

	if (r == -ETIMEDOUT) {
		vm_stop(g->vm);
		vm_wait(g->vm, 10000, &g->ex);
		g->exited = true;
		guest_fail(g, "guest %s still running after %d ms", g->name, timeout_ms);
	}
	if (r < 0)
		guest_fail(g, "vm_wait(%s): %s", g->name, pv_errmsg());
	g->exited = true;
	guest_fetch_log(g);
}

/* Polls the console until `needle` appears; fails after timeout_ms or when the
 * guest exits without printing it. */
static inline void guest_wait_output(struct guest *g, const char *needle, int timeout_ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	for (int waited = 0; ; waited += 10) {
		guest_fetch_log(g);
		if (strstr(g->log, needle))
			return;
		if (waited >= timeout_ms)
			guest_fail(g, "guest %s did not print \"%s\" within %d ms", g->name, needle, timeout_ms);
		if (vm_wait(g->vm, 0, &g->ex) == 0) {
			g->exited = true;
			guest_fetch_log(g);
			if (strstr(g->log, needle))
				return;
			guest_fail(g, "guest %s exited without printing \"%s\"", g->name, needle);
		}
		nanosleep(&ts, NULL);
	}
}

static inline void guest_expect(struct guest *g, const char *needle)
{
	guest_fetch_log(g);
	if (!strstr(g->log, needle))
		guest_fail(g, "guest %s: console lacks \"%s\"", g->name, needle);
}

static inline void guest_expect_not(struct guest *g, const char *needle)
{
	guest_fetch_log(g);
	if (strstr(g->log, needle))
		guest_fail(g, "guest %s: console has \"%s\"", g->name, needle);
}

/* The guest exited through port 0xf4 with `code`, printed its SUMMARY and no FAIL. */
static inline void guest_expect_exit(struct guest *g, int code)
{
	if (g->ex.reason != VM_EXIT_PORT || g->ex.code != code)
		guest_fail(g, "guest %s: exit %s code %d (%s), want exit port code %d", g->name,
			   vm_exit_reason_name(g->ex.reason), g->ex.code, g->ex.detail, code);
	guest_expect(g, "SUMMARY: ");
	guest_expect_not(g, "FAIL: ");
}

/* Restores the snapshot in dir into g: a running VM named o->name (o's hooks
 * apply). Skips without KVM; fails the test when the restore fails. */
static inline void guest_restore(struct guest *g, const char *dir,
				 const struct vm_restore_opts *o)
{
	guest_require_kvm();
	memset(g, 0, sizeof(*g));
	g->name = o->name;
	if (vm_restore(dir, o, &g->vm) < 0)
		fail_msg("vm_restore(%s): %s", dir, pv_errmsg());
}

/* Destroys g's VM (none: nothing) and forgets it. */
static inline void guest_destroy(struct guest *g)
{
	vm_destroy(g->vm);
	g->vm = NULL;
	if (guest_current == g)
		guest_current = NULL;
}

static inline int guest_teardown(void **state)
{
	(void)state;
	if (guest_current && guest_current->vm) {
		vm_stop(guest_current->vm);
		vm_destroy(guest_current->vm);
		guest_current->vm = NULL;
	}
	guest_current = NULL;
	return 0;
}

#endif
