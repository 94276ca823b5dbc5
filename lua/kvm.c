/* kvm.c — the kvm backend's C half: the KvmVM userdata, one microVM on /dev/kvm run
 * by the project's own VMM (vmm/vmm.h) with serial + virtio-console + virtio-vsock (a
 * fresh CID per VM) + virtio-rng + the profile's disks. It creates, starts, polls,
 * pauses, stops, crashes (power loss on every disk) and destroys the VM, keeps the
 * console (serial and hvc0 merged) in a 1 MiB ring with absolute positions, opens
 * vsock streams to the agent, moves the guest clock and snapshots/restores. Nothing
 * here blocks for long: lua/kvm.lua does the waiting on the scheduler. It offers the
 * same console_read/console_pos/console_write/connect/pid methods as the Sandbox
 * userdata (lua/vm.c), so console.lua and worker.lua work on both backends.
 * Exposed as provium._c_kvm. */
#include "lua/kvm.h"
#include "lua/errors.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "runner/kernel.h"
#include "vmm/snapshot.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define RING_SIZE (1u << 20)

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
	uint64_t boot_pos; /* total when the current VM was built: log() starts here */
};

struct lkvm {
	struct kvmvm *k;
};

static void console_out(void *opaque, const char *buf, size_t len)
{
	struct kvmvm *k = opaque;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < len; i++)
		k->ring[(k->total + i) % RING_SIZE] = buf[i];
	k->total += len;
	pthread_mutex_unlock(&k->lock);
}

/* A fresh guest CID: unique per process (pid) and per VM in it (counter). */
static uint64_t next_cid(void)
{
	static unsigned counter;
	return 3 + ((((uint64_t)getpid() & 0xfffff) << 10) | (__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) & 0x3ff));
}

struct kvmvm *pv_kvm_check(lua_State *L, int i)
{
	struct lkvm *u = luaL_checkudata(L, i, KVMVM_MT);
	if (!u->k)
		pv_lua_error(L, "closed", "vm", NULL, "the VM was destroyed");
	return u->k;
}

const char *pv_kvm_name(const struct kvmvm *k) { return k->name; }
int pv_kvm_ndisks(const struct kvmvm *k) { return k->ndisks; }

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

static void vm_free(struct kvmvm *k)
{
	if (k->vm) {
		vm_stop(k->vm);
		vm_destroy(k->vm);
	}
	k->vm = NULL;
	k->vsock = NULL;
	for (int i = 0; i < k->ndisks; i++)
		k->disks[i].blk = NULL;
	for (int i = 0; i < k->nnics; i++) {
		if (k->nics[i].hostfd >= 0)
			close(k->nics[i].hostfd);
		k->nics[i].hostfd = -1;
		k->nics[i].net = NULL;
	}
	k->started = false;
}

/* Creates slot i's device on the (not yet started or restoring) VM; link up when a
 * bridge attachment holds the slot. mac all zero: the device picks a random one. */
static int attach_nic(struct kvmvm *k, struct vm *vm, int i)
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
static int provision_nics(struct kvmvm *k)
{
	int err, have = 0;
	for (int i = 0; i < k->nnics; i++) {
		if (!k->nics[i].net && (err = attach_nic(k, k->vm, i)) < 0)
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
		if ((err = attach_nic(k, k->vm, k->nnics)) < 0)
			return err;
		k->nnics++;
		have++;
	}
	return 0;
}

static int attach_disk(struct kvmvm *k, struct disk_slot *d)
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

/* The VM and its devices, not started. Order matters for snapshots: console, rng,
 * vsock, then the disks (a restore re-creates them in the same order). */
static int vm_build(struct kvmvm *k)
{
	int err;
	struct virtio_console *con;
	struct virtio_rng *rng;
	/* positions stay monotonic across restarts, so open ConsoleStreams continue
	 * with the new boot's output */
	pthread_mutex_lock(&k->lock);
	k->boot_pos = k->total;
	pthread_mutex_unlock(&k->lock);
	k->exited = false;
	memset(&k->ex, 0, sizeof(k->ex));
	if ((err = vm_create(&k->cfg, &k->vm)) < 0) {
		k->vm = NULL;
		return err;
	}
	if ((err = virtio_console_create("hvc0", &con)) < 0)
		goto fail;
	if ((err = virtio_console_attach(con, k->vm)) < 0) {
		virtio_console_destroy(con);
		goto fail;
	}
	if ((err = virtio_rng_create("rng0", &rng)) < 0)
		goto fail;
	if ((err = virtio_rng_attach(rng, k->vm)) < 0) {
		virtio_rng_destroy(rng);
		goto fail;
	}
	k->cid = next_cid();
	if ((err = virtio_vsock_create("vsock0", k->cid, &k->vsock)) < 0)
		goto fail;
	if ((err = virtio_vsock_attach(k->vsock, k->vm)) < 0) {
		virtio_vsock_destroy(k->vsock);
		goto fail;
	}
	for (int i = 0; i < k->ndisks; i++)
		if ((err = attach_disk(k, &k->disks[i])) < 0)
			goto fail;
	return 0;
fail:
	vm_free(k);
	return err;
}

static const char *field_str(lua_State *L, int t, const char *f, char *out, size_t len)
{
	lua_getfield(L, t, f);
	const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
	if (s)
		snprintf(out, len, "%s", s);
	lua_pop(L, 1);
	return s ? out : NULL;
}

static lua_Integer field_int(lua_State *L, int t, const char *f, lua_Integer def)
{
	lua_getfield(L, t, f);
	lua_Integer v = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : def;
	lua_pop(L, 1);
	return v;
}

static struct kvmvm *push_new(lua_State *L, const char *name)
{
	struct lkvm *u = lua_newuserdatauv(L, sizeof(*u), 0);
	u->k = NULL;
	luaL_setmetatable(L, KVMVM_MT);
	struct kvmvm *k = calloc(1, sizeof(*k));
	if (!k || !(k->ring = malloc(RING_SIZE))) {
		free(k);
		pv_lua_error(L, "infra", "lab:vm", name, "out of memory");
	}
	pthread_mutex_init(&k->lock, NULL);
	snprintf(k->name, sizeof(k->name), "%s", name);
	u->k = k;
	return k;
}

/* provium._c_kvm.new{name=, kernel=, initrd=, cmdline=, memory=, cpus=} -> KvmVM,
 * created (devices attached) but not started. */
static int l_new(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	char name[64] = "vm";
	field_str(L, 1, "name", name, sizeof(name));
	struct kvmvm *k = push_new(L, name);
	if (!field_str(L, 1, "kernel", k->kernel, sizeof(k->kernel)))
		pv_lua_error(L, "invalid", "lab:vm", name, "no kernel");
	const char *initrd = field_str(L, 1, "initrd", k->initrd, sizeof(k->initrd));
	const char *cmdline = field_str(L, 1, "cmdline", k->cmdline, sizeof(k->cmdline));
	k->cfg = (struct vm_config){.name = k->name, .kernel = k->kernel, .initrd = initrd,
				    .cmdline = cmdline,
				    .memory_mib = (unsigned)field_int(L, 1, "memory", 256),
				    .cpus = (unsigned)field_int(L, 1, "cpus", 1),
				    .console_out = console_out, .console_opaque = k};
	k->want_slots = (int)field_int(L, 1, "disk_slots", 0);
	if (k->want_slots < 0 || k->want_slots > KVM_MAX_DISKS)
		pv_lua_error(L, "invalid", "lab:vm", name, "disk_slots must be 0..%d", KVM_MAX_DISKS);
	k->want_nics = (int)field_int(L, 1, "nic_slots", 0);
	if (k->want_nics < 0 || k->want_nics > KVM_MAX_NICS)
		pv_lua_error(L, "invalid", "lab:vm", name, "nic_slots must be 0..%d", KVM_MAX_NICS);
	field_str(L, 1, "work_dir", k->work_dir, sizeof(k->work_dir));
	if (vm_build(k) < 0)
		pv_lua_error(L, "infra", "lab:vm", name, "%s", pv_errmsg());
	return 1;
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
	if (!field_str(L, 2, "path", path, sizeof(path)))
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "disk spec needs a path");
	lua_getfield(L, 2, "readonly");
	bool ro = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (ro)
		pv_lua_error(L, "unsupported", "vm:attach_disk", k->name, "a disk attached to a "
			     "running VM cannot be readonly (the slot was offered writable at boot)");
	uint64_t size = (uint64_t)field_int(L, 2, "size", 0);
	field_str(L, 2, "serial", serial, sizeof(serial));
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
static int provision_slots(struct kvmvm *k)
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
		int err = attach_disk(k, d);
		if (err < 0)
			return err;
		k->ndisks++;
		have++;
	}
	return 0;
}

/* k:add_disk{path=, size=, readonly=, serial=} -> slot (1-based), guest name. Before
 * start it adds a device; on a running VM it fills a free pre-provisioned slot. */
static int l_add_disk(lua_State *L)
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
	if (!field_str(L, 2, "path", d->path, sizeof(d->path)))
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "disk spec needs a path");
	d->size = (uint64_t)field_int(L, 2, "size", 0);
	lua_getfield(L, 2, "readonly");
	d->readonly = lua_toboolean(L, -1);
	lua_pop(L, 1);
	field_str(L, 2, "serial", d->serial, sizeof(d->serial));
	if (access(d->path, F_OK) != 0 && d->size == 0)
		pv_lua_error(L, "invalid", "vm:attach_disk", k->name, "%s: no such file (give size= to create it)", d->path);
	if (k->vm && !k->started && attach_disk(k, d) < 0)
		pv_lua_error(L, "infra", "vm:attach_disk", k->name, "%s: %s", d->path, pv_errmsg());
	k->ndisks++;
	lua_pushinteger(L, k->ndisks);
	lua_pushstring(L, d->id);
	return 2;
}

/* k:start([extra_cmdline]): boots the created VM; after an exit, builds a fresh one
 * first. extra_cmdline (e.g. provium.net=...) is appended for this boot only. */
static int l_start(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	const char *extra = luaL_optstring(L, 2, NULL);
	if (k->started && !k->exited)
		pv_lua_error(L, "invalid", "vm:start", k->name, "already running");
	if (k->started || !k->vm) {
		vm_free(k);
		if (vm_build(k) < 0)
			pv_lua_error(L, "infra", "vm:start", k->name, "%s", pv_errmsg());
	}
	if (provision_slots(k) < 0 || provision_nics(k) < 0 ||
	    (extra && extra[0] && vm_cmdline_add(k->vm, extra) < 0) || vm_start(k->vm) < 0)
		pv_lua_error(L, "infra", "vm:start", k->name, "%s", pv_errmsg());
	k->started = true;
	return 0;
}

static void push_exit(lua_State *L, const struct vm_exit *ex)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, vm_exit_reason_name(ex->reason));
	lua_setfield(L, -2, "reason");
	lua_pushinteger(L, ex->code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, ex->detail);
	lua_setfield(L, -2, "detail");
}

/* k:poll([timeout_ms]) -> nil while running (or never started), else {reason, code, detail} */
static int l_poll(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	int ms = (int)luaL_optinteger(L, 2, 0);
	if (!k->vm || !k->started)
		return 0;
	if (!k->exited && vm_wait(k->vm, ms, &k->ex) == 0)
		k->exited = true;
	if (!k->exited)
		return 0;
	push_exit(L, &k->ex);
	return 1;
}

/* k:halt([timeout_ms]): stops the vCPUs (hard) and waits for them; the VM and its
 * disks stay for host-side reads until destroy or the next start. */
static int l_halt(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	int ms = (int)luaL_optinteger(L, 2, 10000);
	if (!k->vm || !k->started || k->exited)
		return 0;
	vm_stop(k->vm);
	if (vm_wait(k->vm, ms, &k->ex) == 0)
		k->exited = true;
	return 0;
}

/* k:power_loss() -> sectors discarded: every disk drops its unflushed writes. Call
 * after halt (nothing runs any more) and before destroy (which would write them). */
static int l_power_loss(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint64_t lost = 0;
	for (int i = 0; i < k->ndisks; i++)
		if (k->disks[i].blk)
			lost += virtio_blk_crash(k->disks[i].blk);
	lua_pushinteger(L, (lua_Integer)lost);
	return 1;
}

static int l_pause(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	if (!k->vm || vm_pause(k->vm) < 0)
		pv_lua_error(L, "infra", "vm:pause", k->name, "%s", k->vm ? pv_errmsg() : "no VM");
	return 0;
}

static int l_resume(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	if (!k->vm || vm_resume(k->vm) < 0)
		pv_lua_error(L, "infra", "vm:resume", k->name, "%s", k->vm ? pv_errmsg() : "no VM");
	return 0;
}

/* k:connect([port]) -> fd of a new vsock stream to the guest port (default 1024). A
 * port nobody listens on yet reads as EOF (the guest answers RST). */
static int l_connect(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint32_t port = (uint32_t)luaL_optinteger(L, 2, 1024);
	if (!k->vsock || k->exited)
		pv_lua_error(L, "closed", "connect", k->name, "the VM is not running");
	int fd = virtio_vsock_connect(k->vsock, port, NULL);
	if (fd < 0)
		pv_lua_error(L, "infra", "connect", k->name, "vsock port %u: %s", port, pv_errmsg());
	lua_pushinteger(L, fd);
	return 1;
}

static int l_console_pos(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	pthread_mutex_lock(&k->lock);
	uint64_t t = k->total;
	pthread_mutex_unlock(&k->lock);
	lua_pushinteger(L, (lua_Integer)t);
	return 1;
}

/* k:console_read(pos [, max]) -> data since pos (what the ring still holds), newpos, eof */
static int l_console_read(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint64_t pos = (uint64_t)luaL_optinteger(L, 2, 0);
	size_t max = (size_t)luaL_optinteger(L, 3, RING_SIZE);
	if (max > RING_SIZE)
		max = RING_SIZE;
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, max);
	pthread_mutex_lock(&k->lock);
	uint64_t oldest = k->total > RING_SIZE ? k->total - RING_SIZE : 0;
	if (oldest < k->boot_pos)
		oldest = k->boot_pos;
	if (pos < oldest)
		pos = oldest;
	if (pos > k->total)
		pos = k->total;
	size_t n = 0;
	while (pos < k->total && n < max)
		p[n++] = k->ring[pos++ % RING_SIZE];
	pthread_mutex_unlock(&k->lock);
	luaL_pushresultsize(&b, n);
	lua_pushinteger(L, (lua_Integer)pos);
	lua_pushboolean(L, !k->vm || k->exited);
	return 3;
}

static int l_console_write(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	size_t n;
	const char *d = luaL_checklstring(L, 2, &n);
	if (!k->vm || k->exited)
		pv_lua_error(L, "closed", "console:write", k->name, "the VM is not running");
	if (vm_console_input(k->vm, d, n) < 0)
		pv_lua_error(L, "infra", "console:write", k->name, "%s", pv_errmsg());
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* k:clock_advance(ns): guest time jumps forward (kvmclock, TSC, pending timers). */
static int l_clock_advance(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_Integer ns = luaL_checkinteger(L, 2);
	if (ns < 0)
		pv_lua_error(L, "invalid", "clock:advance", k->name, "guest time only moves forward");
	if (!k->vm || !k->started || k->exited)
		pv_lua_error(L, "closed", "clock:advance", k->name, "the VM is not running");
	if (vm_clock_advance(k->vm, (uint64_t)ns) < 0)
		pv_lua_error(L, "infra", "clock:advance", k->name, "%s", pv_errmsg());
	return 0;
}

static int l_clock_get(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint64_t ns = 0;
	if (!k->vm || vm_clock_get(k->vm, &ns) < 0)
		pv_lua_error(L, "infra", "clock", k->name, "%s", k->vm ? pv_errmsg() : "no VM");
	lua_pushinteger(L, (lua_Integer)ns);
	return 1;
}

/* k:snapshot(dir): the VM is paused for it (when running) and resumed after. */
static int l_snapshot(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	const char *dir = luaL_checkstring(L, 2);
	if (!k->vm)
		pv_lua_error(L, "closed", "vm:snapshot", k->name, "the VM is not created");
	bool running = k->started && !k->exited;
	if (running && lua_toboolean(L, 3) == 0 && vm_pause(k->vm) < 0)
		pv_lua_error(L, "infra", "vm:snapshot", k->name, "pause: %s", pv_errmsg());
	int err = vm_snapshot(k->vm, dir);
	if (running && lua_toboolean(L, 3) == 0)
		vm_resume(k->vm);
	if (err < 0)
		pv_lua_error(L, "infra", "vm:snapshot", k->name, "%s", pv_errmsg());
	return 0;
}

struct restore_ctx {
	struct kvmvm *k;
	const char *work_dir;
	int err;
};

/* Re-creates the devices lua code needs pointers to: vsock (fresh CID) and disks
 * (a private copy of the snapshot's image in the work dir). */
static int restore_hook(void *opaque, struct vm *vm, const char *kind, const char *id,
			const struct msgpack_object *state, const char *files_dir)
{
	(void)state;
	struct restore_ctx *c = opaque;
	struct kvmvm *k = c->k;
	int err;
	k->vm = vm;
	if (!strcmp(kind, "virtio-vsock")) {
		k->cid = next_cid();
		if ((err = virtio_vsock_create(id, k->cid, &k->vsock)) < 0)
			return err;
		if ((err = virtio_vsock_attach(k->vsock, vm)) < 0)
			virtio_vsock_destroy(k->vsock);
		return err;
	}
	if (!strcmp(kind, "virtio-blk")) {
		if (k->ndisks >= KVM_MAX_DISKS)
			return pv_error(ENOSPC, "too many disks");
		struct disk_slot *d = &k->disks[k->ndisks];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s", id);
		char src[PATH_MAX + 32];
		snprintf(src, sizeof(src), "%s/disk-%s.img", files_dir, id);
		char dst[PATH_MAX];
		snprintf(dst, sizeof(dst), "%s/%.64s-%.8s-%d.img", c->work_dir, k->name, id, (int)getpid());
		snprintf(d->path, sizeof(d->path), "%s", dst);
		if ((err = snapshot_copy_file(src, d->path)) < 0)
			return err;
		if ((err = attach_disk(k, d)) < 0)
			return err;
		d->empty = virtio_blk_size(d->blk) == VIRTIO_BLK_SECTOR; /* a free slot */
		k->ndisks++;
		return 0;
	}
	if (!strcmp(kind, "virtio-net")) {
		if (k->nnics >= KVM_MAX_NICS)
			return pv_error(ENOSPC, "too many NICs");
		struct nic_slot *s = &k->nics[k->nnics];
		memset(s, 0, sizeof(*s));
		s->hostfd = -1;
		snprintf(s->id, sizeof(s->id), "%s", id);
		/* free after a restore: lab:restore re-binds the saved wiring (the saved
		 * MAC and link state come back with the device's state) */
		s->used = true; /* created link-up; the loaded state sets the real link */
		if ((err = attach_nic(k, vm, k->nnics)) < 0)
			return err;
		s->used = false;
		k->nnics++;
		return 0;
	}
	return -ENOENT;
}

/* provium._c_kvm.restore(dir, name, work_dir) -> KvmVM, running (vsock transport
 * reset so the agent re-handshakes on the fresh CID). */
static int l_restore(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	const char *name = luaL_checkstring(L, 2);
	struct restore_ctx c = {.work_dir = luaL_checkstring(L, 3)};
	struct kvmvm *k = push_new(L, name);
	c.k = k;
	struct vm_restore_opts o = {.name = k->name, .console_out = console_out, .console_opaque = k,
				    .work_dir = c.work_dir, .device_hook = restore_hook,
				    .device_opaque = &c};
	struct vm *vm;
	if (vm_restore(dir, &o, &vm) < 0) {
		k->vm = NULL;
		for (int i = 0; i < k->ndisks; i++)
			k->disks[i].blk = NULL;
		for (int i = 0; i < k->nnics; i++) {
			if (k->nics[i].hostfd >= 0)
				close(k->nics[i].hostfd);
			k->nics[i].hostfd = -1;
			k->nics[i].net = NULL;
		}
		k->vsock = NULL;
		pv_lua_error(L, "infra", "snapshot:restore", name, "%s", pv_errmsg());
	}
	k->vm = vm;
	k->started = true;
	if (k->vsock)
		virtio_vsock_transport_reset(k->vsock);
	/* every NIC slot comes back free: link-down until a bridge attaches it again
	 * (lab:restore re-attaches the saved wiring) */
	for (int i = 0; i < k->nnics; i++)
		if (k->nics[i].net)
			virtio_net_set_link(k->nics[i].net, false);
	struct vm_snapshot_info info;
	if (vm_snapshot_info(dir, &info) == 0) {
		snprintf(k->kernel, sizeof(k->kernel), "%s", info.kernel);
		k->cfg = (struct vm_config){.name = k->name, .kernel = k->kernel,
					    .memory_mib = info.memory_mib, .cpus = info.cpus,
					    .console_out = console_out, .console_opaque = k};
	}
	return 1;
}

/* provium._c_kvm.snapshot_info(dir) -> {name, kernel, memory, cpus, devices, created, clock_ns} */
static int l_snapshot_info(lua_State *L)
{
	const char *dir = luaL_checkstring(L, 1);
	struct vm_snapshot_info info;
	if (vm_snapshot_info(dir, &info) < 0)
		pv_lua_error(L, "invalid", "snapshot:info", NULL, "%s", pv_errmsg());
	lua_createtable(L, 0, 8);
	lua_pushstring(L, info.name);
	lua_setfield(L, -2, "vm");
	lua_pushstring(L, info.kernel);
	lua_setfield(L, -2, "kernel");
	lua_pushinteger(L, info.memory_mib);
	lua_setfield(L, -2, "memory");
	lua_pushinteger(L, info.cpus);
	lua_setfield(L, -2, "cpus");
	lua_pushstring(L, info.devices);
	lua_setfield(L, -2, "devices");
	lua_pushnumber(L, (double)info.created_ns / 1e9);
	lua_setfield(L, -2, "created");
	lua_pushinteger(L, (lua_Integer)info.clock_ns);
	lua_setfield(L, -2, "clock_ns");
	return 1;
}

static int l_info(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_createtable(L, 0, 6);
	lua_pushinteger(L, (lua_Integer)k->cid);
	lua_setfield(L, -2, "cid");
	lua_pushinteger(L, getpid());
	lua_setfield(L, -2, "pid");
	lua_pushinteger(L, k->cfg.memory_mib ? k->cfg.memory_mib : 128);
	lua_setfield(L, -2, "memory");
	lua_pushinteger(L, k->cfg.cpus ? k->cfg.cpus : 1);
	lua_setfield(L, -2, "cpus");
	lua_pushstring(L, k->kernel);
	lua_setfield(L, -2, "kernel");
	if (k->initrd[0]) {
		lua_pushstring(L, k->initrd);
		lua_setfield(L, -2, "initrd");
	}
	return 1;
}

static int l_ndisks(lua_State *L)
{
	lua_pushinteger(L, pv_kvm_check(L, 1)->ndisks);
	return 1;
}

/* k:slots() -> {{slot=, id=, empty=}...} in guest order */
static int l_slots(lua_State *L)
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
static int l_add_nic(lua_State *L)
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
static int l_nic_take(lua_State *L)
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
static int l_nic_fd(lua_State *L)
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
static int l_nic_link(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct nic_slot *s = check_nic(L, k, 2, "nic:link");
	if (s->net)
		virtio_net_set_link(s->net, lua_toboolean(L, 3));
	return 0;
}

/* k:nic_release(slot): link down, the slot is free again. */
static int l_nic_release(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct nic_slot *s = check_nic(L, k, 2, "bridge:detach");
	if (s->net)
		virtio_net_set_link(s->net, false);
	s->used = false;
	return 0;
}

/* k:nic_slots() -> {{slot=, id=, mac=, used=, link=, ifname=}...} in guest order */
static int l_nic_slots(lua_State *L)
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

/* The VMM runs inside this process. */
static int l_pid(lua_State *L)
{
	pv_kvm_check(L, 1);
	lua_pushinteger(L, getpid());
	return 1;
}

static int l_destroy(lua_State *L)
{
	struct lkvm *u = luaL_checkudata(L, 1, KVMVM_MT);
	struct kvmvm *k = u->k;
	if (!k)
		return 0;
	vm_free(k);
	u->k = NULL;
	pthread_mutex_destroy(&k->lock);
	free(k->ring);
	free(k);
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct lkvm *u = luaL_checkudata(L, 1, KVMVM_MT);
	lua_pushfstring(L, "KvmVM(%s, cid %d)", u->k ? u->k->name : "destroyed",
			u->k ? (int)u->k->cid : -1);
	return 1;
}

/* provium._c_kvm.kernel_paths() -> vmlinux, initrd (or nil, message naming the fix) */
static int l_kernel_paths(lua_State *L)
{
	char k[PATH_MAX], i[PATH_MAX];
	if (kernel_paths(k, i, sizeof(k)) < 0) {
		lua_pushnil(L);
		lua_pushstring(L, pv_errmsg());
		return 2;
	}
	lua_pushstring(L, k);
	lua_pushstring(L, i);
	return 2;
}

int pv_luaopen_kvm(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"add_disk", l_add_disk}, {"start", l_start}, {"poll", l_poll}, {"halt", l_halt},
		{"power_loss", l_power_loss}, {"pause", l_pause}, {"resume", l_resume},
		{"connect", l_connect}, {"console_pos", l_console_pos},
		{"console_read", l_console_read}, {"console_write", l_console_write},
		{"clock_advance", l_clock_advance}, {"clock_get", l_clock_get},
		{"snapshot", l_snapshot}, {"info", l_info}, {"pid", l_pid}, {"ndisks", l_ndisks}, {"slots", l_slots},
		{"add_nic", l_add_nic}, {"nic_take", l_nic_take}, {"nic_fd", l_nic_fd},
		{"nic_link", l_nic_link}, {"nic_release", l_nic_release}, {"nic_slots", l_nic_slots},
		{"destroy", l_destroy}, {"free", l_destroy}, {NULL, NULL},
	};
	if (luaL_newmetatable(L, KVMVM_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_destroy);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {
		{"new", l_new}, {"restore", l_restore}, {"snapshot_info", l_snapshot_info},
		{"kernel_paths", l_kernel_paths}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_kvm");
	}
	lua_pop(L, 1);
	return 0;
}
