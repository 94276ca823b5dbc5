/* host_virtio_rng.c — boots the virtio_rng guest with a virtio-rng device: the
 * guest reads random bytes by polling and by interrupt, and the device counted
 * what it handed over. */
#include "tests/guest/host_virtio.h"
#include "devices/virtio.h"
#include "devices/virtio_rng.h"

static struct guest g;

static void run_rng(bool fallback)
{
	struct virtio_rng *r;
	vguest_create(&g, "virtio_rng", "console=ttyS0", NULL, NULL);
	if (virtio_rng_create("rng0", &r) < 0)
		fail_msg("virtio_rng_create: %s", pv_errmsg());
	struct virtio_dev *v = virtio_rng_vdev(r);
	v->no_eventfds = fallback;
	if (virtio_rng_attach(r, g.vm) < 0) {
		virtio_rng_destroy(r);
		fail_msg("virtio_rng_attach: %s", pv_errmsg());
	}
	vguest_start(&g);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);
	guest_expect(&g, "PASS: random bytes are not all zero");
	guest_expect(&g, "PASS: two reads differ");
	guest_expect(&g, "PASS: used-buffer interrupt arrived");
	assert_int_equal(virtio_rng_bytes(r), 128);
	if (getenv("PROVIUM_GUEST_LOG"))
		guest_print_log(&g);
	printf("# notifications: %lu by ioeventfd, %lu by MMIO exit; irqfd %s\n",
	       (unsigned long)v->notify_events, (unsigned long)v->notify_exits,
	       v->irqfd >= 0 ? "on" : "off (KVM_IRQ_LINE)");
	if (fallback) {
		assert_int_equal(v->notify_events, 0);
		assert_int_equal(v->notify_exits, 2);
		assert_true(v->irqfd < 0);
	} else {
		assert_int_equal(v->notify_events + v->notify_exits, 2);
	}
}

/* irqfd + ioeventfd where KVM offers them (this host's PVM does). */
static void test_guest_reads_random_bytes(void **state)
{
	(void)state;
	run_rng(false);
}

/* The exit-path fallbacks: QueueNotify by MMIO exit, interrupts by KVM_IRQ_LINE. */
static void test_fallback_paths(void **state)
{
	(void)state;
	run_rng(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_guest_reads_random_bytes, guest_teardown),
		cmocka_unit_test_teardown(test_fallback_paths, guest_teardown),
	};
	return cmocka_run_group_tests_name("guest_virtio_rng", tests, NULL, NULL);
}
