/* kvm_int.h — private to the kvm backend's C files: lua/kvm.c (the KvmVM userdata:
 * lifecycle, console, vsock, clock, snapshots), lua/kvm_disk.c (its disk slots) and
 * lua/kvm_nic.c (its virtio-net slots). The VM handle and what they share; every other
 * file sees a KvmVM through lua/kvm.h. The Lua methods defined in kvm_disk.c and
 * kvm_nic.c are registered by kvm.c's method table (pv_luaopen_kvm). */
#ifndef PROVIUM_LUA_KVM_INT_H
#define PROVIUM_LUA_KVM_INT_H

#include "lua/kvm.h"
#include "vmm/vmm.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <lua.h>

struct disk_slot {
	char id[8];            /* vda, vdb... */
	char path[PATH_MAX];   /* the image (always a file: {size=} disks get one in tmpdir) */
	char serial[24];
	uint64_t size;
	bool readonly, writeback;
	bool empty;             /* a pre-provisioned slot with a 1-sector placeholder */
	struct virtio_blk *blk; /* live device of the current VM, or NULL */
};

#define KVM_MAX_NICS 8

/* A virtio-net slot: a device whose backend is one end of a SOCK_SEQPACKET
 * socketpair; provium's end (hostfd) is what the bridge's relay (lua/nic.c) reads
 * and writes, so kvm NICs cross the same netpath as sandbox NICs. Slots not
 * attached to a bridge stay link-down. */
struct nic_slot {
	char id[16];            /* net0, net1... (guest eth0, eth1...) */
	uint8_t mac[6];
	bool used;              /* bound to a bridge attachment */
	int hostfd;             /* provium's end of the socketpair, -1 without a device */
	struct virtio_net *net; /* live device of the current VM, or NULL */
};

struct kvmvm {
	char name[64];
	struct vm_config cfg;
	char kernel[PATH_MAX], initrd[PATH_MAX], cmdline[4096];
	struct vm *vm;
	bool started, exited;
	struct vm_exit ex;
	struct virtio_vsock *vsock;
	uint64_t cid;
	int adopted_fd;         /* the agent stream a restore adopted, until k:adopted() */
	int ndisks;             /* disks and slots, in guest order (vda, vdb...) */
	int want_slots;         /* empty slots to provision at start */
	char work_dir[PATH_MAX];
	struct disk_slot disks[KVM_MAX_DISKS];
	int nnics;              /* NIC slots, in guest order (eth0, eth1...) */
	int want_nics;          /* free NIC slots to provision at start */
	struct nic_slot nics[KVM_MAX_NICS];
	/* console ring: total counts every byte ever printed since the VM was created */
	pthread_mutex_t lock;
	char *ring;
	uint64_t total;
	bool cr_pending;   /* a CR is held back: it is dropped when a LF follows */
	uint64_t boot_pos; /* total when the current VM was built: log() starts here */
};

/* Field f of the table at t copied into out (NULL when not a string). */
static inline const char *kvm_field_str(lua_State *L, int t, const char *f, char *out, size_t len)
{
	lua_getfield(L, t, f);
	const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
	if (s)
		snprintf(out, len, "%s", s);
	lua_pop(L, 1);
	return s ? out : NULL;
}

static inline lua_Integer kvm_field_int(lua_State *L, int t, const char *f, lua_Integer def)
{
	lua_getfield(L, t, f);
	lua_Integer v = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : def;
	lua_pop(L, 1);
	return v;
}

/* ---- lua/kvm_disk.c ---- */
/* Creates disk d's device on k->vm (not yet started, or restoring). */
int pv_kvm_disk_attach(struct kvmvm *k, struct disk_slot *d);
/* Appends the empty slots the profile asked for (want_slots). */
int pv_kvm_disks_provision(struct kvmvm *k);
/* Restore: disk `id` from a private copy of the snapshot's image in work_dir. */
int pv_kvm_disk_restore(struct kvmvm *k, const char *id, const char *files_dir,
			const char *work_dir);
int pv_kvm_l_add_disk(lua_State *L);
int pv_kvm_l_power_loss(lua_State *L);
int pv_kvm_l_ndisks(lua_State *L);
int pv_kvm_l_slots(lua_State *L);

/* ---- lua/kvm_nic.c ---- */
/* The NICs attached before start, then free link-down slots up to want_nics. */
int pv_kvm_nics_provision(struct kvmvm *k);
/* Forgets the devices of the NIC slots (closing provium's socketpair ends). */
void pv_kvm_nics_free(struct kvmvm *k);
/* Restore: NIC slot `id` re-created on vm, free (see kvm_nic.c). */
int pv_kvm_nic_restore(struct kvmvm *k, struct vm *vm, const char *id);
/* After a restore every slot is free: link down. */
void pv_kvm_nics_link_down(struct kvmvm *k);
int pv_kvm_l_add_nic(lua_State *L);
int pv_kvm_l_nic_take(lua_State *L);
int pv_kvm_l_nic_fd(lua_State *L);
int pv_kvm_l_nic_link(lua_State *L);
int pv_kvm_l_nic_release(lua_State *L);
int pv_kvm_l_nic_slots(lua_State *L);

#endif
