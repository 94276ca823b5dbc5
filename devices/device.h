/* device.h — what every device is: a struct embedding `struct device` and one
 * static ops table (designated initializers). The transport (virtio_mmio.c) or the
 * platform code calls the ops; save/load exist from the start so snapshots can
 * cover every device. */
#ifndef PROVIUM_DEVICE_H
#define PROVIUM_DEVICE_H

#include <stdint.h>
#include <msgpack.h>

struct vm;
struct device;

struct device_ops {
	const char *name;
	int (*realize)(struct device *d, struct vm *vm);
	void (*mmio_read)(struct device *d, uint64_t off, void *data, unsigned len);
	void (*mmio_write)(struct device *d, uint64_t off, const void *data, unsigned len);
	void (*queue_notify)(struct device *d, unsigned queue);
	/* Snapshot: write the device state as one msgpack map / read it back. */
	int (*save)(struct device *d, msgpack_packer *pk);
	int (*load)(struct device *d, const msgpack_object *state);
	void (*reset)(struct device *d);
	void (*destroy)(struct device *d);
};

struct device {
	const struct device_ops *ops;
	struct vm *vm;
	char id[32];          /* "serial0", "vda", "net0", ... */
};

#endif
