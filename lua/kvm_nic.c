/* kvm_nic.c — the virtio-net slots of a KvmVM (lua/kvm.c; struct nic_slot in
 * lua/kvm_int.h), which bridge.lua's kvm attachments bind: NICs added before start
 * (link up) or free link-down slots (profile nic_slots) taken on a running VM, each
 * device backed by a SOCK_SEQPACKET socketpair whose host end the bridge relay
 * (lua/nic.c) uses; link changes, release, the slot list, and re-creation on restore.
 * Its Lua methods are registered by kvm.c's method table. */
#include "lua/kvm_int.h"
#include "lua/errors.h"
#include "devices/virtio_net.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

/* Creates slot i's device on the (not yet started or restoring) VM; link up when a
 * bridge attachment holds the slot. mac all zero: the device picks a random one. */
static int nic_attach(struct kvmvm *k, struct vm *vm, int i)
{
	struct nic_slot *s = &k->nics[i];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return pv_error(errno, "%s: socketpair: %s", s->id, strerror(errno));
	struct virtio_net_opts o = {.fd = sv[0], .link_down = !s->used};
	memcpy(o.mac, s->mac, 6);
	struct virtio_net *n;
	int err = virtio_net_create(s->id, &o, &n);
	if (err < 0) {
		close(sv[1]);
		return err;
	}
	if ((err = virtio_net_attach(n, vm)) < 0) {
		virtio_net_destroy(n);
		close(sv[1]);
		return err;
	}
	virtio_net_mac(n, s->mac);
	s->net = n;
	s->hostfd = sv[1];
	return 0;
}

/* The NICs attached before start, then free link-down slots up to want_nics. */
int pv_kvm_nics_provision(struct kvmvm *k)
{
	int err, have = 0;
	for (int i = 0; i < k->nnics; i++) {
		if (!k->nics[i].net && (err = nic_attach(k, k->vm, i)) < 0)
			return err;
		have += !k->nics[i].used;
	}
	while (have < k->want_nics && k->nnics < KVM_MAX_NICS) {
		struct nic_slot *s = &k->nics[k->nnics];
		memset(s, 0, sizeof(*s));
		s->hostfd = -1;
		snprintf(s->id, sizeof(s->id), "net%d", k->nnics);
		/* locally administered, unique per VM (CID) and slot */
		uint8_t mac[6] = {0x02, 0x6b, (uint8_t)(k->cid >> 16), (uint8_t)(k->cid >> 8),
				  (uint8_t)k->cid, (uint8_t)k->nnics};
		memcpy(s->mac, mac, 6);
		if ((err = nic_attach(k, k->vm, k->nnics)) < 0)
			return err;
		k->nnics++;
		have++;
	}
	return 0;
}

void pv_kvm_nics_free(struct kvmvm *k)
{
	for (int i = 0; i < k->nnics; i++) {
		if (k->nics[i].hostfd >= 0)
			close(k->nics[i].hostfd);
		k->nics[i].hostfd = -1;
		k->nics[i].net = NULL;
	}
}

/* A NIC of a restoring VM: created link-up, the loaded device state sets the real
 * link; the slot is free afterwards (see pv_kvm_nics_link_down). */
int pv_kvm_nic_restore(struct kvmvm *k, struct vm *vm, const char *id)
{
	int err;
	if (k->nnics >= KVM_MAX_NICS)
		return pv_error(ENOSPC, "too many NICs");
	struct nic_slot *s = &k->nics[k->nnics];
	memset(s, 0, sizeof(*s));
	s->hostfd = -1;
	snprintf(s->id, sizeof(s->id), "%s", id);
	/* free after a restore: lab:restore re-binds the saved wiring (the saved
	 * MAC and link state come back with the device's state) */
	s->used = true; /* created link-up; the loaded state sets the real link */
	if ((err = nic_attach(k, vm, k->nnics)) < 0)
		return err;
	s->used = false;
	k->nnics++;
	return 0;
}

/* every NIC slot of a restored VM comes back free: link-down until a bridge attaches
 * it again (lab:restore re-attaches the saved wiring) */
void pv_kvm_nics_link_down(struct kvmvm *k)
{
for (int i = 0; i < k->nnics; i++)
	if (k->nics[i].net)
		virtio_net_set_link(k->nics[i].net, false);
}

/* ---- NIC slots (bridge.lua's kvm attachments) ---- */

static void push_mac(lua_State *L, const uint8_t m[6])
{
	char b[18];
	snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	lua_pushstring(L, b);
}

static struct nic_slot *check_nic(lua_State *L, struct kvmvm *k, int arg, const char *op)
{
	lua_Integer i = luaL_checkinteger(L, arg);
	if (i < 1 || i > k->nnics)
		pv_lua_error(L, "invalid", op, k->name, "no NIC slot %d (the VM has %d)", (int)i, k->nnics);
	struct nic_slot *s = &k->nics[i - 1];
	if (s->net)
		virtio_net_mac(s->net, s->mac); /* a restored device loaded its saved MAC */
	return s;
}

/* k:add_nic(mac) -> slot (1-based): before start (or after an exit) a NIC the next
 * boot gets with its link up. */
int pv_kvm_l_add_nic(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	const char *macs = luaL_checkstring(L, 2);
	if (k->started && !k->exited)
		pv_lua_error(L, "invalid", "bridge:attach", k->name, "the VM is running: take a free slot");
	unsigned m[6];
	if (sscanf(macs, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		pv_lua_error(L, "invalid", "bridge:attach", k->name, "bad MAC %s", macs);
	/* a free slot made at an earlier boot is reused (its device is re-made anyway) */
	int i;
	for (i = 0; i < k->nnics && k->nics[i].used; i++)
		;
	if (i == k->nnics) {
		if (k->nnics >= KVM_MAX_NICS)
			pv_lua_error(L, "invalid", "bridge:attach", k->name, "at most %d NICs", KVM_MAX_NICS);
		memset(&k->nics[i], 0, sizeof(k->nics[i]));
		k->nics[i].hostfd = -1;
		snprintf(k->nics[i].id, sizeof(k->nics[i].id), "net%d", i);
		k->nnics++;
	}
	struct nic_slot *s = &k->nics[i];
	for (int j = 0; j < 6; j++)
		s->mac[j] = (uint8_t)m[j];
	s->used = true;
	lua_pushinteger(L, i + 1);
	return 1;
}

/* k:nic_take([slot]) -> slot, mac: binds a free slot of the running VM (the first,
 * or the one asked for: lab:restore re-binds the saved slot). */
int pv_kvm_l_nic_take(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	int i = -1;
	if (!lua_isnoneornil(L, 2)) {
		struct nic_slot *s = check_nic(L, k, 2, "bridge:attach");
		if (s->used || !s->net)
			pv_lua_error(L, "invalid", "bridge:attach", k->name, "NIC slot %s is taken", s->id);
		i = (int)(s - k->nics);
	} else {
		for (int j = 0; j < k->nnics && i < 0; j++)
			if (!k->nics[j].used && k->nics[j].net)
				i = j;
	}
	if (i < 0)
		pv_lua_error(L, "unsupported", "bridge:attach", k->name,
			     "the VM is running and has no free NIC slot: x86 virtio-mmio NICs are "
			     "announced on the kernel command line at boot, so attach before "
			     "vm:start() or give the profile more nic_slots (it has %d)", k->nnics);
	struct nic_slot *s = &k->nics[i];
	virtio_net_mac(s->net, s->mac);
	s->used = true;
	lua_pushinteger(L, i + 1);
	push_mac(L, s->mac);
	return 2;
}

/* k:nic_fd(slot) -> a dup of provium's end of the slot's socketpair (the relay owns
 * and closes the dup), or nil when the VM has no device for it now. */
int pv_kvm_l_nic_fd(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct nic_slot *s = check_nic(L, k, 2, "bridge:attach");
	if (s->hostfd < 0)
		return 0;
	/* frames the guest sent while nothing was bound are stale */
	char buf[2048];
	while (recv(s->hostfd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	int fd = fcntl(s->hostfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		pv_lua_error(L, "infra", "bridge:attach", k->name, "dup: %s", strerror(errno));
	lua_pushinteger(L, fd);
	return 1;
}

/* k:nic_link(slot, up): the guest sees the carrier change (config interrupt). */
int pv_kvm_l_nic_link(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct nic_slot *s = check_nic(L, k, 2, "nic:link");
	if (s->net)
		virtio_net_set_link(s->net, lua_toboolean(L, 3));
	return 0;
}

/* k:nic_release(slot): link down, the slot is free again. */
int pv_kvm_l_nic_release(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct nic_slot *s = check_nic(L, k, 2, "bridge:detach");
	if (s->net)
		virtio_net_set_link(s->net, false);
	s->used = false;
	return 0;
}

/* k:nic_slots() -> {{slot=, id=, mac=, used=, link=, ifname=}...} in guest order */
int pv_kvm_l_nic_slots(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_createtable(L, k->nnics, 0);
	for (int i = 0; i < k->nnics; i++) {
		struct nic_slot *s = check_nic(L, k, (lua_pushinteger(L, i + 1), -1), "nic_slots");
		lua_pop(L, 1);
		lua_createtable(L, 0, 6);
		lua_pushinteger(L, i + 1);
		lua_setfield(L, -2, "slot");
		lua_pushstring(L, s->id);
		lua_setfield(L, -2, "id");
		lua_pushfstring(L, "eth%d", i);
		lua_setfield(L, -2, "ifname");
		push_mac(L, s->mac);
		lua_setfield(L, -2, "mac");
		lua_pushboolean(L, s->used);
		lua_setfield(L, -2, "used");
		lua_pushboolean(L, s->net && virtio_net_link_up(s->net));
		lua_setfield(L, -2, "link");
		lua_pushboolean(L, s->net != NULL);
		lua_setfield(L, -2, "live");
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}
