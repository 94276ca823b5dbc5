/* host_serial.c — serial input: the serial_echo guest waits on the UART, the host
 * types a line with vm_console_input() and expects it echoed back. A second case
 * sends a line longer than the 8250's 16-byte FIFO. */
#include "tests/guest/host.h"

static struct guest g;

static void echo(const char *line)
{
	char input[256], want[300];

	guest_boot(&g, "serial_echo", "console=ttyS0", 64, 1);
	guest_wait_output(&g, "INFO: ready", GUEST_TIMEOUT_MS);
	snprintf(input, sizeof(input), "%s\n", line);
	if (vm_console_input(g.vm, input, strlen(input)) < 0)
		guest_fail(&g, "vm_console_input: %s", pv_errmsg());
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
	snprintf(want, sizeof(want), "ECHO: %s\r\n", line);
	guest_expect(&g, want);
}

static void test_short_line(void **state)
{
	(void)state;
	echo("hello provium 123");
}

static void test_line_longer_than_fifo(void **state)
{
	(void)state;
	echo("the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_short_line, guest_teardown),
		cmocka_unit_test_teardown(test_line_longer_than_fifo, guest_teardown),
	};

	return cmocka_run_group_tests_name("guest_serial", tests, NULL, NULL);
}
