/* host_virtio.h — host-side helpers for the virtio guest tests: like host.h's
 * guest_boot, but split so devices can be attached between vm_create and
 * vm_start. Teardown through host.h's guest_teardown. */
#ifndef PROVIUM_TESTS_GUEST_HOST_VIRTIO_H
#define PROVIUM_TESTS_GUEST_HOST_VIRTIO_H

#include "tests/guest/host.h"

static inline void vguest_create(struct guest *g, const char *name, const char *cmdline,
				 void (*out)(void *, const char *, size_t), void *opaque)
{
	struct vm_config cfg = {
		.name = name, .kernel = guest_elf_path(name), .cmdline = cmdline,
		.memory_mib = 64, .cpus = 1, .console_out = out, .console_opaque = opaque,
	};
	guest_create(g, &cfg);
}

static inline void vguest_start(struct guest *g)
{
	guest_start(g);
}

#endif
