/* host_interrupts.c — the interrupts guest counts LAPIC-timer ticks and PIT ticks
 * delivered through the in-kernel IOAPIC on the pin our MP table names for IRQ 0. */
#include "tests/guest/host.h"

static struct guest g;

static void test_timer_ticks(void **state)
{
	(void)state;
	guest_boot(&g, "interrupts", "console=ttyS0", 64, 1);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: LAPIC timer: 5 of 5 ticks");
	guest_expect(&g, "PASS: MP table routes ISA IRQ 0 to IOAPIC pin");
	guest_expect(&g, "PASS: PIT through IOAPIC pin");
	guest_expect(&g, "PASS: no unexpected interrupts (0)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_timer_ticks, guest_teardown),
	};

	return cmocka_run_group_tests_name("guest_interrupts", tests, NULL, NULL);
}
