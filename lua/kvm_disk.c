/* kvm_disk.c — the disk slots of a KvmVM (lua/kvm.c; struct in lua/kvm_int.h): the
 * virtio-blk devices of the profile's disks, attached before start or, on a running
 * VM, inserted into pre-provisioned empty slots (profile disk_slots); re-created from
 * a snapshot on restore; power loss; the slot list; and the accessors lua/disk.c uses
 * (lua/kvm.h). Its Lua methods are registered by kvm.c's method table. */
#include "lua/kvm_int.h"
#include "lua/errors.h"
#include "devices/virtio_blk.h"
#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

struct virtio_blk *pv_kvm_disk(struct kvmvm *k, int slot, const char **id, const char **path)
{
	if (slot < 0 || slot >= k->ndisks || k->disks[slot].empty)
		return NULL;
	if (id)
		*id = k->disks[slot].id;
	if (path)
		*path = k->disks[slot].path;
	return k->vm ? k->disks[slot].blk : NULL;
}

void pv_kvm_disk_set_cache(struct kvmvm *k, int slot, bool writeback)
{
	if (slot >= 0 && slot < k->ndisks)
		k->disks[slot].writeback = writeback;
}

int pv_kvm_disk_attach(struct kvmvm *k, struct disk_slot *d)
{
	struct virtio_blk_opts o = {.id = d->id, .path = d->path, .size = d->size,
				    .readonly = d->readonly, .serial = d->serial[0] ? d->serial : NULL};
	struct virtio_blk *b;
	int err = virtio_blk_create(&o, &b);
	if (err)
		return err;
	if (d->writeback && (err = virtio_blk_set_cache(b, VIRTIO_BLK_CACHE_WRITEBACK)) < 0) {
		virtio_blk_destroy(b);
		return err;
	}
	if ((err = virtio_blk_attach(b, k->vm)) < 0) {
		virtio_blk_destroy(b);
		return err;
	}
	d->blk = b;
	return 0;
}

/* A disk for a running VM goes into the first empty pre-provisioned slot: x86
 * virtio-mmio devices are announced on the kernel command line, so a started guest
 * cannot discover a new device, but a slot's device can change its image and
 * capacity (virtio_blk_insert). */
static int insert_disk(lua_State *L, struct kvmvm *k)
{
	int i;
	for (i = 0; i < k->ndisks && !k->disks[i].empty; i++)
		;
	if (i == k->ndisks || !k->disks[i].blk)
		pv_lua_error(L, "unsupported", "vm:attach_disk", k->name,
			     "the VM is running and has no free disk slot: x86 virtio-mmio disks "
			     "are announced on the kernel command line at boot, so attach disks "
			     "before vm:start() or give the profile more disk_slots");
	struct disk_slot *d = &k->disks[i];
	char path[PATH_MAX], serial[24] = "";
	if (!kvm_field_str(L, 2, "path", path, sizeof(path)))
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "disk spec needs a path");
	lua_getfield(L, 2, "readonly");
	bool ro = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (ro)
		pv_lua_error(L, "unsupported", "vm:attach_disk", k->name, "a disk attached to a "
			     "running VM cannot be readonly (the slot was offered writable at boot)");
	uint64_t size = (uint64_t)kvm_field_int(L, 2, "size", 0);
	kvm_field_str(L, 2, "serial", serial, sizeof(serial));
	if (access(path, F_OK) != 0 && size == 0)
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "%s: no such file (give size= to create it)", path);
	if (virtio_blk_insert(d->blk, path, size, serial[0] ? serial : NULL) < 0)
		pv_lua_error(L, "infra", "vm:attach_disk", k->name, "%s: %s", path, pv_errmsg());
	unlink(d->path); /* the placeholder */
	snprintf(d->path, sizeof(d->path), "%s", path);
	snprintf(d->serial, sizeof(d->serial), "%s", serial);
	d->size = size;
	d->empty = false;
	lua_pushinteger(L, i + 1);
	lua_pushstring(L, d->id);
	return 2;
}

/* Appends the empty slots the profile asked for (at the first start, after the
 * disks attached before it, so guest names follow attach order). */
int pv_kvm_disks_provision(struct kvmvm *k)
{
	int have = 0;
	for (int i = 0; i < k->ndisks; i++)
		have += k->disks[i].empty;
	while (have < k->want_slots && k->ndisks < KVM_MAX_DISKS) {
		struct disk_slot *d = &k->disks[k->ndisks];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "vd%c", 'a' + k->ndisks);
		char p[PATH_MAX];
		if (snprintf(p, sizeof(p), "%s/%s-slot-%s.img", k->work_dir[0] ? k->work_dir : "/tmp",
			     k->name, d->id) >= (int)sizeof(p))
			return pv_error(ENAMETOOLONG, "disk slot path too long");
		snprintf(d->path, sizeof(d->path), "%s", p);
		unlink(d->path);
		d->size = VIRTIO_BLK_SECTOR;
		d->empty = true;
		int err = pv_kvm_disk_attach(k, d);
		if (err < 0)
			return err;
		k->ndisks++;
		have++;
	}
	return 0;
}

/* k:add_disk{path=, size=, readonly=, serial=} -> slot (1-based), guest name. Before
 * start it adds a device; on a running VM it fills a free pre-provisioned slot. */
int pv_kvm_l_add_disk(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (k->started && !k->exited)
		return insert_disk(L, k);
	if (k->ndisks >= KVM_MAX_DISKS)
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "at most %d disks", KVM_MAX_DISKS);
	struct disk_slot *d = &k->disks[k->ndisks];
	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "vd%c", 'a' + k->ndisks);
	if (!kvm_field_str(L, 2, "path", d->path, sizeof(d->path)))
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "disk spec needs a path");
	d->size = (uint64_t)kvm_field_int(L, 2, "size", 0);
	lua_getfield(L, 2, "readonly");
	d->readonly = lua_toboolean(L, -1);
	lua_pop(L, 1);
	kvm_field_str(L, 2, "serial", d->serial, sizeof(d->serial));
	if (access(d->path, F_OK) != 0 && d->size == 0)
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "%s: no such file (give size= to create it)", d->path);
	if (k->vm && !k->started && pv_kvm_disk_attach(k, d) < 0)
		pv_lua_error(L, "infra", "vm:attach_disk", k->name, "%s: %s", d->path, pv_errmsg());
	k->ndisks++;
	lua_pushinteger(L, k->ndisks);
	lua_pushstring(L, d->id);
	return 2;
}


/* k:power_loss() -> sectors discarded: every disk drops its unflushed writes. Call
 * after halt (nothing runs any more) and before destroy (which would write them). */
int pv_kvm_l_power_loss(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint64_t lost = 0;
	for (int i = 0; i < k->ndisks; i++)
		if (k->disks[i].blk)
			lost += virtio_blk_crash(k->disks[i].blk);
	lua_pushinteger(L, (lua_Integer)lost);
	return 1;
}

/* A disk of a restoring VM (k->vm is set): a private copy of the snapshot's image in
 * work_dir, so the snapshot stays as it was; a 1-sector image is a free slot. */
int pv_kvm_disk_restore(struct kvmvm *k, const char *id, const char *files_dir,
			const char *work_dir)
{
	int err;
	if (k->ndisks >= KVM_MAX_DISKS)
		return pv_error(ENOSPC, "too many disks");
	struct disk_slot *d = &k->disks[k->ndisks];
	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	char src[PATH_MAX + 32];
	snprintf(src, sizeof(src), "%s/disk-%s.img", files_dir, id);
	char dst[PATH_MAX];
	snprintf(dst, sizeof(dst), "%s/%.64s-%.8s-%d.img", work_dir, k->name, id, (int)getpid());
	snprintf(d->path, sizeof(d->path), "%s", dst);
	if ((err = snapshot_copy_file(src, d->path)) < 0)
		return err;
	if ((err = pv_kvm_disk_attach(k, d)) < 0)
		return err;
	d->empty = virtio_blk_size(d->blk) == VIRTIO_BLK_SECTOR; /* a free slot */
	k->ndisks++;
	return 0;
}

int pv_kvm_l_ndisks(lua_State *L)
{
	lua_pushinteger(L, pv_kvm_check(L, 1)->ndisks);
	return 1;
}

/* k:slots() -> {{slot=, id=, empty=}...} in guest order */
int pv_kvm_l_slots(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_createtable(L, k->ndisks, 0);
	for (int i = 0; i < k->ndisks; i++) {
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, i + 1);
		lua_setfield(L, -2, "slot");
		lua_pushstring(L, k->disks[i].id);
		lua_setfield(L, -2, "id");
		lua_pushboolean(L, k->disks[i].empty);
		lua_setfield(L, -2, "empty");
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}
