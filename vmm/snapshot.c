/* snapshot.c — saving a paused VM into a snapshot directory and restoring a new VM
 * from one (vmm.h: vm_snapshot, vm_restore, vm_snapshot_info; docs/snapshots.md).
 *
 * The state (vm.state, checked by vmm/snapshot_file.c) is one msgpack map:
 *   config   {arch, name, kernel, initrd, cmdline, memory_mib, cpus, created_ns}
 *            (arch: "x86_64" or "arm64"; absent in older snapshots: x86_64)
 *   vcpus    [the architecture's map per vCPU (arch_save_vcpu)]; x86: {regs,
 *             sregs, fpu, xsave, xcrs, lapic, events, debugregs: raw KVM structs
 *             as bin; mp_state; tsc; msrs: [[index, value], ...]}; arm64: {regs:
 *             (id, size, bytes) records of every ONE_REG register; mp_state; events}
 *   vm       the architecture's chips and clock (arch_save_vm); x86: {pic_master,
 *             pic_slave, ioapic, pit2: bin; clock_ns; tsc_khz}; arm64: {the GICv3's
 *             attribute records by phase; counter; cntfrq; clock_ns}
 *   serial   the UART's own map (serial_save)
 *   devices  [{kind, id, mmio, irq, state: the device's save() map, image?}]
 * Restore re-creates the devices in the saved order (so MMIO windows and IRQs come
 * out the same), maps guest RAM privately from `memory`, loads every vCPU, the
 * irqchip, the PIT and kvmclock, then starts the vCPU threads. */
#include "vmm/vm_internal.h"
#include "vmm/arch.h"
#include "vmm/snapshot.h"
#include "agent/proto.h"
#include "vmm/util.h"
#include "devices/device.h"
#include "devices/serial.h"
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/snapshot_pack.h"

/* ---- helpers ---- */

/* A string field copied into buf; "" when absent. */
static void mp_str(const msgpack_object *map, const char *key, char *buf, size_t len)
{
	const msgpack_object *o = mp_get(map, key);
	buf[0] = 0;
	if (o && o->type == MSGPACK_OBJECT_STR)
		snprintf(buf, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}

/* "a/b" into buf; -ENAMETOOLONG when it does not fit. */
static int join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= len)
		return pv_error(ENAMETOOLONG, "path %s/%s is too long", a, b);
	return 0;
}

/* ---- save ---- */

/* A virtio-blk device is saved with a copy of its image: the restored VM works on
 * a private copy of that copy, never on the original. */
static int save_device(struct vm *vm, const struct vm_device *vd, const char *dir,
		       msgpack_packer *pk)
{
	struct device *d = vd->dev;
	const char *kind = d->ops->name;
	bool blk = !strcmp(kind, "virtio-blk");
	char image[96];
	msgpack_pack_map(pk, 5 + blk);
	pk_kv_str(pk, "kind", kind);
	pk_kv_str(pk, "id", d->id);
	pk_kv_u64(pk, "mmio", vd->mmio_base);
	pk_kv_u64(pk, "irq", (uint64_t)vd->irq);
	if (blk) {
		char dst[PATH_MAX];
		snprintf(image, sizeof(image), "disk-%s.img", d->id);
		int err = join(dst, sizeof(dst), dir, image);
		if (!err)
			err = snapshot_copy_file(virtio_blk_path((struct virtio_blk *)d), dst);
		if (err)
			return pv_error_prefix(-err, "vm %s: device %s", vm->name, d->id);
		pk_kv_str(pk, "image", image);
	}
	pk_str(pk, "state");
	if (!d->ops->save)
		return pv_error(ENOTSUP, "vm %s: device %s (%s) cannot be saved", vm->name, d->id,
				kind);
	int err = d->ops->save(d, pk);
	return err < 0 ? pv_error_prefix(-err, "vm %s: device %s", vm->name, d->id) : 0;
}

static void save_config(struct vm *vm, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 8);
	pk_kv_str(pk, "arch", arch_layout.name);
	pk_kv_str(pk, "name", vm->name);
	pk_kv_str(pk, "kernel", vm->kernel);
	pk_kv_str(pk, "initrd", vm->initrd);
	pk_kv_str(pk, "cmdline", vm->cmdline);
	pk_kv_u64(pk, "memory_mib", vm->mem_size >> 20);
	pk_kv_u64(pk, "cpus", vm->ncpus);
	pk_kv_u64(pk, "created_ns", pv_wall_ns());
}

int vm_snapshot(struct vm *vm, const char *dir)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int err;
	struct stat st;
	if (stat(dir, &st) == 0 && rmdir(dir) < 0)
		return pv_error(EEXIST, "vm %s: snapshot %s already exists", vm->name, dir);
	if (vm->started && !atomic_load(&vm->pausing))
		vm_pause(vm);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", dir, (int)getpid());
	snapshot_rm_tree(tmp);
	if (mkdir(tmp, 0755) < 0)
		return pv_error(errno, "vm %s: snapshot %s: %s", vm->name, tmp, strerror(errno));

	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	pk_str(&pk, "config");
	save_config(vm, &pk);
	pk_str(&pk, "vcpus");
	msgpack_pack_array(&pk, vm->ncpus);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((err = arch_save_vcpu(&vm->vcpus[i], &pk)))
			goto fail;
	pk_str(&pk, "vm");
	if ((err = arch_save_vm(vm, &pk)))
		goto fail;
	pk_str(&pk, "serial");
	if ((err = serial_save(vm->serial, (struct msgpack_packer *)&pk)))
		goto fail;
	pthread_mutex_lock(&vm->lock);
	unsigned nd = vm->ndevices;
	struct vm_device devs[VM_MAX_DEVICES];
	memcpy(devs, vm->devices, sizeof(devs));
	pthread_mutex_unlock(&vm->lock);
	pk_str(&pk, "devices");
	msgpack_pack_array(&pk, nd);
	for (unsigned i = 0; i < nd; i++)
		if ((err = save_device(vm, &devs[i], tmp, &pk)))
			goto fail;

	/* Anonymous RAM may go to the next restore when this VM is destroyed: the
	 * writes from here on are tracked (snapshot_warm.c). */
	uint64_t gen = vm->mem_fd < 0 ? snapshot_warm_begin() : 0;
	if ((err = join(path, sizeof(path), tmp, SNAPSHOT_MEMORY_FILE)) ||
	    (err = snapshot_memory_write(path, vm->mem, vm->mem_size, vm->mem_fd)))
		goto fail;
	if ((err = join(path, sizeof(path), tmp, SNAPSHOT_STATE_FILE)) ||
	    (err = snapshot_state_write(path, sb.data, sb.size)))
		goto fail;
	if (rename(tmp, dir) < 0) {
		err = pv_error(errno, "rename %s to %s: %s", tmp, dir, strerror(errno));
		goto fail;
	}
	snapshot_warm_free(vm->warm);
	vm->warm = NULL;
	if (gen && !join(path, sizeof(path), dir, SNAPSHOT_MEMORY_FILE))
		vm->warm = snapshot_warm_claim(gen, path);
	msgpack_sbuffer_destroy(&sb);
	return 0;
fail:
	msgpack_sbuffer_destroy(&sb);
	snapshot_rm_tree(tmp);
	return pv_error_prefix(-err, "vm %s: snapshot %s", vm->name, dir);
}

/* ---- restore ---- */

struct loaded {
	void *data;
	size_t len;
	msgpack_unpacked up;
	const msgpack_object *root, *config, *vcpus, *vmst, *serial, *devices;
};

static void loaded_free(struct loaded *l)
{
	msgpack_unpacked_destroy(&l->up);
	free(l->data);
}

static int load_state(const char *dir, struct loaded *l)
{
	char path[PATH_MAX];
	memset(l, 0, sizeof(*l));
	msgpack_unpacked_init(&l->up);
	int err = join(path, sizeof(path), dir, SNAPSHOT_STATE_FILE);
	if (err)
		return err;
	err = snapshot_state_read(path, &l->data, &l->len);
	if (err)
		return err;
	/* The CRC only says the file is as written, not that a friendly provium
	 * wrote it: check the shape before msgpack-c allocates what it announces. */
	char why[160];
	if (pv_msgpack_check(l->data, l->len, why, sizeof(why)) < 0)
		return pv_error(EINVAL, "snapshot state %s: not a valid state: %s", path, why);
	size_t off = 0;
	if (msgpack_unpack_next(&l->up, l->data, l->len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    l->up.data.type != MSGPACK_OBJECT_MAP)
		return pv_error(EINVAL, "snapshot state %s: the state is not a msgpack map", path);
	l->root = &l->up.data;
	l->config = mp_get(l->root, "config");
	l->vcpus = mp_get(l->root, "vcpus");
	l->vmst = mp_get(l->root, "vm");
	l->serial = mp_get(l->root, "serial");
	l->devices = mp_get(l->root, "devices");
	if (!l->config || l->config->type != MSGPACK_OBJECT_MAP || !l->vcpus ||
	    l->vcpus->type != MSGPACK_OBJECT_ARRAY || !l->vmst || !l->serial || !l->devices ||
	    l->devices->type != MSGPACK_OBJECT_ARRAY)
		return pv_error(EINVAL, "snapshot state %s: config, vcpus, vm, serial or devices "
				"is missing", path);
	/* Everything restore indexes by these numbers is checked here, once. */
	uint64_t cpus = 0, mib = 0;
	if (mp_u64(l->config, "config", "cpus", &cpus) ||
	    mp_u64(l->config, "config", "memory_mib", &mib))
		return pv_error_prefix(EINVAL, "snapshot state %s", path);
	if (cpus < 1 || cpus > VM_MAX_CPUS)
		return pv_error(EINVAL, "snapshot state %s: config says cpus %" PRIu64 ", must be "
				"1..%d", path, cpus, VM_MAX_CPUS);
	if (cpus != l->vcpus->via.array.size)
		return pv_error(EINVAL, "snapshot state %s: %u vCPU states, its config says cpus "
				"%" PRIu64, path, l->vcpus->via.array.size, cpus);
	for (uint32_t i = 0; i < l->vcpus->via.array.size; i++)
		if (l->vcpus->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
			return pv_error(EINVAL, "snapshot state %s: vCPU %u is not a map", path, i);
	if (mib < 1 || mib > UINT32_MAX)
		return pv_error(EINVAL, "snapshot state %s: config says memory_mib %" PRIu64,
				path, mib);
	if (l->devices->via.array.size > VM_MAX_DEVICES)
		return pv_error(EINVAL, "snapshot state %s: %u devices, at most %d", path,
				l->devices->via.array.size, VM_MAX_DEVICES);
	return 0;
}

struct restore_file {
	struct vm *vm;
	char path[PATH_MAX];
};

static void unlink_work_file(void *opaque)
{
	struct restore_file *f = opaque;
	unlink(f->path);
	free(f);
}

static int make_blk(struct vm *vm, const char *id, const msgpack_object *dev,
		    const char *dir, const struct vm_restore_opts *o)
{
	char image[128], src[PATH_MAX];
	mp_str(dev, "image", image, sizeof(image));
	if (!image[0] || strchr(image, '/'))
		return pv_error(EINVAL, "device %s: no disk image in the snapshot", id);
	if (join(src, sizeof(src), dir, image))
		return -ENAMETOOLONG;
	struct restore_file *f = calloc(1, sizeof(*f));
	if (!f)
		return pv_error(ENOMEM, "out of memory");
	const char *wd = o && o->work_dir ? o->work_dir : getenv("TMPDIR");
	snprintf(f->path, sizeof(f->path), "%s/provium-%s-%s-XXXXXX", wd && *wd ? wd : "/tmp",
		 vm->name, id);
	int fd = mkostemp(f->path, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(f);
		return pv_error(e, "device %s: disk copy in %s: %s", id, wd ? wd : "/tmp",
				strerror(e));
	}
	close(fd);
	int err = snapshot_copy_file(src, f->path);
	const msgpack_object *st = mp_get(dev, "state");
	const msgpack_object *tr = mp_get(st, "transport");
	uint64_t hf = 0;
	mp_u64(tr, id, "host_features", &hf);
	struct virtio_blk_opts bo = {
		.id = id, .path = f->path, .readonly = hf & (1ull << 5) /* VIRTIO_BLK_F_RO */,
	};
	struct virtio_blk *b = NULL;
	if (!err)
		err = virtio_blk_create(&bo, &b);
	if (!err && (err = virtio_blk_attach(b, vm)) < 0)
		virtio_blk_destroy(b);
	if (err) {
		unlink(f->path);
		free(f);
		return err;
	}
	vm_add_cleanup(vm, unlink_work_file, f); /* runs before the device's own */
	return 0;
}

/* The devices the VMM can build itself. */
static int make_device(struct vm *vm, const char *kind, const char *id,
		       const msgpack_object *dev, const char *dir,
		       const struct vm_restore_opts *o)
{
	int err;
	if (o && o->device_hook) {
		err = o->device_hook(o->device_opaque, vm, kind, id, mp_get(dev, "state"), dir);
		if (err != -ENOENT)
			return err;
	}
	if (!strcmp(kind, "virtio-rng")) {
		struct virtio_rng *r;
		if ((err = virtio_rng_create(id, &r)))
			return err;
		if ((err = virtio_rng_attach(r, vm)))
			virtio_rng_destroy(r);
		return err;
	}
	if (!strcmp(kind, "virtio-console")) {
		struct virtio_console *c;
		if ((err = virtio_console_create(id, &c)))
			return err;
		if ((err = virtio_console_attach(c, vm)))
			virtio_console_destroy(c);
		return err;
	}
	if (!strcmp(kind, "virtio-blk"))
		return make_blk(vm, id, dev, dir, o);
	return pv_error(ENOTSUP, "device %s is a %s, which the VMM cannot re-create by "
			"itself (vm_restore_opts.device_hook must)", id, kind);
}

static int restore_devices(struct vm *vm, const struct loaded *l, const char *dir,
			   const struct vm_restore_opts *o)
{
	const msgpack_object_array *a = &l->devices->via.array;
	for (uint32_t i = 0; i < a->size; i++) {
		const msgpack_object *dev = &a->ptr[i];
		char kind[64], id[64];
		uint64_t mmio = 0, irq = 0;
		mp_str(dev, "kind", kind, sizeof(kind));
		mp_str(dev, "id", id, sizeof(id));
		int err = mp_u64(dev, "device", "mmio", &mmio);
		if (!err)
			err = mp_u64(dev, "device", "irq", &irq);
		if (!err)
			err = make_device(vm, kind, id, dev, dir, o);
		if (err)
			return pv_error_prefix(-err, "device %u (%s)", i, id);
		pthread_mutex_lock(&vm->lock);
		struct vm_device vd = vm->ndevices == i + 1 ? vm->devices[i] : (struct vm_device){0};
		pthread_mutex_unlock(&vm->lock);
		if (!vd.dev || vd.mmio_base != mmio || vd.irq != (int)irq)
			return pv_error(EINVAL, "device %s came back at 0x%" PRIx64 " irq %d, it "
					"was saved at 0x%" PRIx64 " irq %" PRIu64, id, vd.mmio_base,
					vd.irq, mmio, irq);
		if (vd.dev->ops->load &&
		    (err = vd.dev->ops->load(vd.dev, mp_get(dev, "state"))) < 0)
			return pv_error_prefix(-err, "device %s: loading its state", id);
	}
	return 0;
}

/* The saved architecture; snapshots from before arm64 have none and are x86_64. */
static void saved_arch(const struct loaded *l, char *buf, size_t len)
{
	mp_str(l->config, "arch", buf, len);
	if (!buf[0])
		snprintf(buf, len, "x86_64");
}

int vm_restore(const char *dir, const struct vm_restore_opts *o, struct vm **out)
{
	struct loaded l;
	struct vm *vm = NULL;
	char kernel[PATH_MAX], initrd[PATH_MAX], cmdline[4096], name[64], mem[PATH_MAX];
	uint64_t mib = 0, cpus = 0;
	char arch[32];
	int err = load_state(dir, &l);
	if (err)
		goto fail;
	saved_arch(&l, arch, sizeof(arch));
	if (strcmp(arch, arch_layout.name)) {
		err = pv_error(EINVAL, "the snapshot is of an %s VM; this provium runs %s guests",
			       arch, arch_layout.name);
		goto fail;
	}
	mp_str(l.config, "kernel", kernel, sizeof(kernel));
	mp_str(l.config, "initrd", initrd, sizeof(initrd));
	mp_str(l.config, "cmdline", cmdline, sizeof(cmdline));
	mp_str(l.config, "name", name, sizeof(name));
	/* load_state checked both: cpus matches the vCPU array, both in range */
	mp_u64(l.config, "config", "memory_mib", &mib);
	mp_u64(l.config, "config", "cpus", &cpus);
	struct vm_config cfg = {
		.name = o && o->name ? o->name : name,
		.kernel = kernel[0] ? kernel : NULL,
		.initrd = initrd[0] ? initrd : NULL,
		.cmdline = cmdline,
		.memory_mib = (unsigned)mib,
		.cpus = (unsigned)cpus,
		.console_out = o ? o->console_out : NULL,
		.console_opaque = o ? o->console_opaque : NULL,
	};
	if ((err = join(mem, sizeof(mem), dir, SNAPSHOT_MEMORY_FILE)))
		goto fail;
	if ((err = vm_create_from(&cfg, mem, &vm)))
		goto fail;
	/* RAM taken from the snapshotted VM is anonymous: nothing to copy in, and it
	 * may go back to the cache when this VM is destroyed, its writes tracked from
	 * here (restores come in series: a fixture's VMs, a test restoring again). The
	 * clear that takes write-protects every page of the process, and each VM's next
	 * write to a page is then a fault: not while another VM runs here (a pool's
	 * parked VMs, a lab) */
	if (vm->mem_fd >= 0)
		vm->writes = snapshot_writes_apply(dir, vm->mem, vm->mem_size, vm->mem_fd);
	else if (vm->ram_warm && vm_live_count() == 1)
		vm->warm = snapshot_warm_claim(snapshot_warm_begin(), mem);
	if ((err = restore_devices(vm, &l, dir, o)))
		goto fail;
	if ((err = serial_load(vm->serial, (const struct msgpack_object *)l.serial)))
		goto fail;
	/* The device entries restore added are already in the saved command line. */
	free(vm->cmdline);
	vm->cmdline = strdup(cmdline);
	if (!vm->cmdline) {
		err = pv_error(ENOMEM, "out of memory");
		goto fail;
	}
	if ((err = arch_restore_chips(vm, l.vmst)))
		goto fail;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if ((err = arch_restore_vcpu(&vm->vcpus[i], &l.vcpus->via.array.ptr[i])))
			goto fail;
	if ((err = arch_restore_clock(vm, l.vmst)))
		goto fail;
	if (o && o->clock_advance_ns && (err = vm_clock_advance(vm, o->clock_advance_ns)))
		goto fail;
	/* The guest was stopped: a kvmclock guest hears so before it runs again. */
	arch_after_pause(vm);
	if ((err = vm_start_loaded(vm, o && o->paused)))
		goto fail;
	if (o && o->paused)
		vm_pause(vm);
	loaded_free(&l);
	*out = vm;
	return 0;
fail:
	loaded_free(&l);
	vm_destroy(vm);
	return pv_error_prefix(-err, "restore from %s", dir);
}

int vm_snapshot_info(const char *dir, struct vm_snapshot_info *info)
{
	struct loaded l;
	uint64_t v = 0;
	memset(info, 0, sizeof(*info));
	int err = load_state(dir, &l);
	if (err) {
		loaded_free(&l);
		return err;
	}
	saved_arch(&l, info->arch, sizeof(info->arch));
	mp_str(l.config, "name", info->name, sizeof(info->name));
	mp_str(l.config, "kernel", info->kernel, sizeof(info->kernel));
	if (!mp_u64(l.config, "config", "memory_mib", &v))
		info->memory_mib = (unsigned)v;
	if (!mp_u64(l.config, "config", "cpus", &v))
		info->cpus = (unsigned)v;
	mp_u64(l.config, "config", "created_ns", &info->created_ns);
	mp_u64(l.vmst, "vm", "clock_ns", &info->clock_ns);
	pv_error_clear();
	const msgpack_object_array *a = &l.devices->via.array;
	info->ndevices = a->size;
	size_t n = 0;
	for (uint32_t i = 0; i < a->size; i++) {
		char kind[64], id[64];
		mp_str(&a->ptr[i], "kind", kind, sizeof(kind));
		mp_str(&a->ptr[i], "id", id, sizeof(id));
		int w = snprintf(info->devices + n, sizeof(info->devices) - n, "%s%s:%s",
				 n ? " " : "", id, kind);
		if (w < 0 || (size_t)w >= sizeof(info->devices) - n)
			break;
		n += (size_t)w;
	}
	loaded_free(&l);
	return 0;
}
