/* host_smp.c — boots the smp guest with 2 and 4 vCPUs: it must find them all in the
 * MP table and bring APIC id 1 up with INIT/SIPI through the in-kernel LAPIC. When
 * the AP does not come up the guest prints a SKIP naming the stage it reached, and
 * this test skips with that reason instead of passing. */
#include "tests/guest/host.h"

static struct guest g;

static void boot_cpus(unsigned cpus)
{
	char line[64];
	const char *skipline;

	guest_boot(&g, "smp", "console=ttyS0", 64, cpus);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
	snprintf(line, sizeof(line), "PASS: MP table lists %u processors", cpus);
	guest_expect(&g, line);
	guest_expect(&g, "PASS: BSP APIC id 0 matches");
	skipline = strstr(g.log, "SKIP: ");
	if (skipline) {
		printf("# %.*s\n", (int)strcspn(skipline, "\r\n"), skipline);
		skip();
	}
	guest_expect(&g, "PASS: AP 1 came up in long mode and ran C code");
	guest_expect(&g, "PASS: AP reports APIC id 1");
}

static void test_two_cpus(void **state) { (void)state; boot_cpus(2); }

/* The failure path: aimed at an APIC id no vCPU has, the guest must say how far the
 * AP got (nowhere) as a SKIP, not claim a PASS. */
static void test_missing_ap_is_reported(void **state)
{
	(void)state;
	guest_boot(&g, "smp", "console=ttyS0 ap=5 ap_timeout_ms=300", 64, 2);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
	guest_expect(&g, "SKIP: AP 5: after INIT/SIPI it did not start (no write from real mode) (stage 0 of 4): timed out");
	guest_expect_not(&g, "came up");
	guest_expect(&g, "SUMMARY: 2 tests, 0 unexpected failures, 1 skipped");
}
static void test_four_cpus(void **state) { (void)state; boot_cpus(4); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_two_cpus, guest_teardown),
		cmocka_unit_test_teardown(test_four_cpus, guest_teardown),
		cmocka_unit_test_teardown(test_missing_ap_is_reported, guest_teardown),
	};

	return cmocka_run_group_tests_name("guest_smp", tests, NULL, NULL);
}
