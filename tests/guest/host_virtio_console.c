/* host_virtio_console.c — boots the virtio_console guest with a virtio-console
 * device: its hvc0 output lands in the VM console ring next to the serial
 * output, and host input (vm_console_input) reaches the guest's receive queue. */
#include "tests/guest/host_virtio.h"
#include "devices/virtio_console.h"

static struct guest g;

static void test_output_and_input(void **state)
{
	(void)state;
	struct virtio_console *c;
	vguest_create(&g, "virtio_console", "console=ttyS0", NULL, NULL);
	if (virtio_console_create("hvc0", &c) < 0)
		fail_msg("virtio_console_create: %s", pv_errmsg());
	if (virtio_console_attach(c, g.vm) < 0) {
		virtio_console_destroy(c);
		fail_msg("virtio_console_attach: %s", pv_errmsg());
	}
	vguest_start(&g);
	guest_wait_output(&g, "hvc: ready", GUEST_TIMEOUT_MS);
	guest_expect(&g, "hello from hvc0\n");
	if (vm_console_input(g.vm, "ping-hvc\n", 9) < 0)
		guest_fail(&g, "vm_console_input: %s", pv_errmsg());
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	if (getenv("PROVIUM_GUEST_LOG"))
		guest_print_log(&g);
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: host input arrived (9 bytes)");
	guest_expect(&g, "HVC-ECHO: ping-hvc\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_output_and_input, guest_teardown),
	};
	return cmocka_run_group_tests_name("guest_virtio_console", tests, NULL, NULL);
}
