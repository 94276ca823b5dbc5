/* fuzz_console.h — virtio-console as a fuzz target: transmit and receive chains
 * from a hostile fake guest (fuzz_guest.h; aliased buffers, one head published
 * many times, rewrites between kicks), host input at any moment (HOST: bytes to
 * type) and save + load of the state. Aborts when the device hands the console
 * more than its fixed TX buffer at once. Shared by the libFuzzer harness and the
 * corpus replay (tests/unit/test_fuzz_corpora.c). */
#ifndef PROVIUM_FUZZ_CONSOLE_H
#define PROVIUM_FUZZ_CONSOLE_H

#include "devices/virtio_console.h"
#include "tests/fuzz/fuzz_guest.h"

#include <stdio.h>

struct fzc {
	struct virtio_console *c;
	uint64_t out;
};

static void fzc_out(void *opaque, const char *d, size_t n)
{
	struct fzc *x = opaque;
	if (n > VIRTIO_CONSOLE_TX_BUF) {
		fprintf(stderr, "fuzz_console: %zu bytes at once\n", n);
		abort();
	}
	if (n)
		x->out += (uint8_t)d[n - 1];
}

static void fzc_host(void *opaque, struct fz *a)
{
	struct fzc *x = opaque;
	uint8_t op = fz_u8(a);
	if (op & 1) {
		fgz_save_load(&virtio_console_vdev(x->c)->dev);
		return;
	}
	static char big[VIRTIO_CONSOLE_INBUF + 100];
	size_t n = a->n - a->off;
	if (op & 2)
		virtio_console_input(x->c, big, sizeof(big)); /* more than it holds */
	else
		virtio_console_input(x->c, a->p + a->off, n);
}

static inline int pv_fuzz_console(const uint8_t *data, size_t size)
{
	struct fzc x = {0};
	struct fguest_fuzz g = {.host = fzc_host, .opaque = &x};
	if (virtio_console_create("hvc0", &x.c) < 0)
		abort();
	virtio_console_set_output(x.c, fzc_out, &x);
	if (fgz_init(&g, virtio_console_vdev(x.c), 2, NULL) < 0)
		abort();
	fgz_run(&g, data, size);
	virtio_console_destroy(x.c);
	fgz_fini(&g);
	return 0;
}

#endif
