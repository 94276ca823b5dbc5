/* fuzz_snapshot.h — the snapshot loader as a fuzz target. The input is the msgpack
 * state of a vm.state file; the harness writes it with a correct header and CRC
 * (snapshot_state_write), so every input reaches the decoder, and then does what a
 * restore does short of KVM: vm_snapshot_info() (load_state: the shape and config
 * checks), then loads the "serial" map into a UART and every "devices" entry's
 * "state" into a fresh device of its kind (virtio-blk over a scratch image,
 * virtio-console, virtio-rng, virtio-vsock, virtio-net) bound to fake guest RAM.
 * Shared by the libFuzzer harness and the corpus replay. */
#ifndef PROVIUM_FUZZ_SNAPSHOT_H
#define PROVIUM_FUZZ_SNAPSHOT_H

#include "agent/proto.h"
#include "devices/serial.h"
#include "tests/fuzz/fuzz_guest.h"
#include "vmm/snapshot.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char fzsn_path[64];

static void fzsn_cleanup(void)
{
	snapshot_rm_tree(fzsn_path);
}

/* A scratch directory for the state file, removed at exit. */
static const char *fzsn_dir(void)
{
	if (!fzsn_path[0]) {
		snprintf(fzsn_path, sizeof(fzsn_path), "%s/provium-fuzz-snap-%d",
			 fgz_tmp(), (int)getpid());
		mkdir(fzsn_path, 0700);
		atexit(fzsn_cleanup);
	}
	return fzsn_path;
}

/* The fuzz_guest.h device kind a saved "kind" names, or FGZ_KINDS. */
static enum fgz_kind fzsn_kind(const char *kind, size_t klen)
{
	static const char *const names[FGZ_KINDS] = {"virtio-rng", "virtio-console",
						     "virtio-vsock", "virtio-blk", "virtio-net"};
	for (unsigned k = 0; k < FGZ_KINDS; k++)
		if (klen == strlen(names[k]) && !memcmp(kind, names[k], klen))
			return (enum fgz_kind)k;
	return FGZ_KINDS;
}

static void fzsn_load_devices(const msgpack_object *root)
{
	static uint8_t mem[0x10000];
	char img[96];
	snprintf(img, sizeof(img), "%s/disk.img", fzsn_dir());
	const msgpack_object *ser = virtio_msgpack_get(root, "serial");
	if (ser) {
		struct serial *s;
		if (serial_new(NULL, &s) < 0)
			abort();
		serial_load(s, (const struct msgpack_object *)ser);
		serial_free(s);
	}
	const msgpack_object *devs = virtio_msgpack_get(root, "devices");
	if (!devs || devs->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < devs->via.array.size && i < 8; i++) {
		const msgpack_object *k = virtio_msgpack_get(&devs->via.array.ptr[i], "kind");
		const msgpack_object *st = virtio_msgpack_get(&devs->via.array.ptr[i], "state");
		if (!k || k->type != MSGPACK_OBJECT_STR || !st)
			continue;
		int peer = -1;
		unsigned nq;
		enum fgz_kind kind = fzsn_kind(k->via.str.ptr, k->via.str.size);
		struct virtio_dev *v = kind == FGZ_KINDS ? NULL :
				       fgz_make_device(kind, NULL, img, &peer, &nq);
		if (!v)
			continue;
		memset(mem, 0, sizeof(mem));
		virtio_dev_bind_mem(v, mem, sizeof(mem));
		v->dev.ops->load(&v->dev, st);
		v->dev.ops->destroy(&v->dev);
		if (peer >= 0)
			close(peer);
	}
	unlink(img);
}

static inline int pv_fuzz_snapshot(const uint8_t *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", fzsn_dir(), SNAPSHOT_STATE_FILE);
	if (snapshot_state_write(path, data, size) < 0)
		abort();
	struct vm_snapshot_info info;
	int err = vm_snapshot_info(fzsn_dir(), &info);
	/* the shape check passed there: decode like the loader and load the devices */
	char why[160];
	if (err == 0 && pv_msgpack_check(data, size, why, sizeof(why)) == 0) {
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, (const char *)data, size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS)
			fzsn_load_devices(&up.data);
		msgpack_unpacked_destroy(&up);
	}
	pv_error_clear();
	return 0;
}

#endif
