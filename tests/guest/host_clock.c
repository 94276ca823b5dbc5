/* host_clock.c — guest clock control under the real VMM with the clock_kvmclock
 * guest: vm_clock_advance(100 s) shows in the guest's kvmclock and TSC, a pending
 * LAPIC one-shot timer (~550 s away) fires when the host advances past it, and
 * after snapshot + restore the guest clock continues from the saved value (the
 * time the VM spent saved does not show). */
#include "tests/guest/host.h"

#include <sys/stat.h>

static struct guest g;

/* Sends "read" and parses the n-th "clock ... tsc ..." line. */
static void guest_read(struct guest *gg, int nth, uint64_t *clock, uint64_t *tsc)
{
	const char *p;
	int seen = 0;

	if (vm_console_input(gg->vm, "read\n", 5) < 0)
		guest_fail(gg, "console input: %s", pv_errmsg());
	for (int waited = 0; waited < GUEST_TIMEOUT_MS; waited += 10) {
		guest_fetch_log(gg);
		seen = 0;
		/* Line starts only ("PASS: kvmclock enabled" is not a reading). */
		for (p = gg->log; *p && (p == gg->log || (p = strstr(p, "\nclock ")));
		     p++) {
			if (*p == '\n')
				p++;
			if (strncmp(p, "clock ", 6))
				continue;
			if (++seen == nth) {
				unsigned long c, t;
				if (sscanf(p, "clock %lu tsc %lu", &c, &t) == 2 && strchr(p, '\n')) {
					*clock = c;
					*tsc = t;
					return;
				}
			}
		}
		usleep(10000);
	}
	guest_fail(gg, "guest %s printed no clock reading %d", gg->name, nth);
}

static void test_advance_seen_by_guest(void **state)
{
	uint64_t c0, t0, c1, t1, host0, host1;

	(void)state;
	guest_boot(&g, "clock_kvmclock", "", 64, 1);
	guest_wait_output(&g, "ready", GUEST_TIMEOUT_MS);
	guest_expect(&g, "PASS: kvmclock enabled");
	guest_read(&g, 1, &c0, &t0);
	assert_int_equal(vm_clock_get(g.vm, &host0), 0);
	assert_true(host0 >= c0);
	if (vm_clock_advance(g.vm, 100ull * 1000000000ull) < 0)
		guest_fail(&g, "vm_clock_advance: %s", pv_errmsg());
	assert_int_equal(vm_clock_get(g.vm, &host1), 0);
	assert_true(host1 - host0 >= 100ull * 1000000000ull);
	guest_read(&g, 2, &c1, &t1);
	printf("# kvmclock %lu -> %lu ns (+%.3f s), tsc +%lu\n", (unsigned long)c0,
	       (unsigned long)c1, (c1 - c0) / 1e9, (unsigned long)(t1 - t0));
	if (c1 - c0 < 100ull * 1000000000ull || c1 - c0 > 160ull * 1000000000ull)
		guest_fail(&g, "guest kvmclock moved %.3f s, want 100..160 s", (c1 - c0) / 1e9);
	/* The TSC moved along: at least 100 s at one cycle per ns or more (>= 1 GHz).
	 * Not on PVM: its guests read the host's TSC with rdtsc, unoffset. */
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		printf("# PVM host: guest rdtsc reads the host TSC, which KVM cannot move; "
		       "TSC check not made\n");
	else if (t1 - t0 < 100ull * 1000000000ull)
		guest_fail(&g, "guest TSC moved only %lu cycles", (unsigned long)(t1 - t0));
	vm_console_input(g.vm, "exit\n", 5);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
}

static void test_advance_fires_pending_timer(void **state)
{
	(void)state;
	guest_boot(&g, "clock_kvmclock", "", 64, 1);
	guest_wait_output(&g, "ready", GUEST_TIMEOUT_MS);
	vm_console_input(g.vm, "timer\n", 6);
	guest_wait_output(&g, "timer armed", GUEST_TIMEOUT_MS);
	usleep(200000);
	guest_expect_not(&g, "timer fired");
	/* ~550 s of guest time away: only an advance can make it fire in this test. */
	if (vm_clock_advance(g.vm, 600ull * 1000000000ull) < 0)
		guest_fail(&g, "vm_clock_advance: %s", pv_errmsg());
	guest_wait_output(&g, "timer fired", GUEST_TIMEOUT_MS);
	vm_console_input(g.vm, "exit\n", 5);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
}

static void test_restore_continues_the_clock(void **state)
{
	char dir[128];
	uint64_t c0, t0, c1, t1;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/provium-clocksnap-%d", (int)getpid());
	guest_boot(&g, "clock_kvmclock", "", 64, 1);
	guest_wait_output(&g, "ready", GUEST_TIMEOUT_MS);
	guest_read(&g, 1, &c0, &t0);
	uint64_t h0 = pv_now_ns();
	if (vm_snapshot(g.vm, dir) < 0)
		guest_fail(&g, "vm_snapshot: %s", pv_errmsg());
	vm_destroy(g.vm);
	g.vm = NULL;
	sleep(3); /* time the VM spends saved */
	struct vm_restore_opts o = {.name = "clock_restored"};
	if (vm_restore(dir, &o, &g.vm) < 0)
		fail_msg("vm_restore: %s", pv_errmsg());
	g.name = "clock_restored";
	/* The restored console starts empty: this is reading 1 of the new VM. */
	guest_read(&g, 1, &c1, &t1);
	uint64_t h1 = pv_now_ns();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	printf("# guest clock +%.3f s over %.3f s of host time (3 s of it saved)\n",
	       (c1 - c0) / 1e9, (h1 - h0) / 1e9);
	assert_true(c1 > c0);
	if (c1 - c0 > h1 - h0 - 2500000000ull)
		guest_fail(&g, "guest clock moved %.3f s: the 3 s spent saved showed",
			   (c1 - c0) / 1e9);
	assert_true(t1 > t0);
	vm_console_input(g.vm, "exit\n", 5);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_advance_seen_by_guest, guest_teardown),
		cmocka_unit_test_teardown(test_advance_fires_pending_timer, guest_teardown),
		cmocka_unit_test_teardown(test_restore_continues_the_clock, guest_teardown),
	};

	return cmocka_run_group_tests_name("guest_clock", tests, NULL, NULL);
}
