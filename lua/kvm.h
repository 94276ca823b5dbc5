/* kvm.h — the kvm backend's VM handle (lua/kvm.c; disk slots in lua/kvm_disk.c) as
 * lua/disk.c and lua/snapshot.c see it: the disks of a KvmVM userdata, by slot. */
#ifndef PROVIUM_LUA_KVM_H
#define PROVIUM_LUA_KVM_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#define KVMVM_MT "provium.KvmVM"
#define KVM_MAX_DISKS 16

struct virtio_blk;
struct kvmvm;

/* The KvmVM at stack index i (raises `closed` when it was destroyed). */
struct kvmvm *pv_kvm_check(lua_State *L, int i);
const char *pv_kvm_name(const struct kvmvm *k);
/* The live device of disk slot `slot` (0-based), or NULL while the VM has none (not
 * created, or destroyed). *id gets the guest name ("vda"), *path the image. */
struct virtio_blk *pv_kvm_disk(struct kvmvm *k, int slot, const char **id, const char **path);
int pv_kvm_ndisks(const struct kvmvm *k);
/* Remembers the cache mode of a slot so a restarted VM keeps it. */
void pv_kvm_disk_set_cache(struct kvmvm *k, int slot, bool writeback);

#endif
