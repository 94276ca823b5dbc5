/* kvm.c — the kvm backend's C half: the KvmVM userdata, one microVM on /dev/kvm run
 * by the project's own VMM (vmm/vmm.h) with serial + virtio-console + virtio-vsock (a
 * fresh CID per VM) + virtio-rng + the profile's disks. It creates, starts, polls,
 * pauses, stops, crashes (power loss on every disk) and destroys the VM, keeps the
 * console (serial and hvc0 merged) in a 1 MiB ring with absolute positions, opens
 * vsock streams to the agent, moves the guest clock and snapshots/restores. Nothing
 * here blocks for long: lua/kvm.lua does the waiting on the scheduler. It offers the
 * same console_read/console_pos/console_write/connect/pid methods as the Sandbox
 * userdata (lua/vm.c), so console.lua and worker.lua work on both backends.
 * Exposed as provium._c_kvm. The disk slots live in lua/kvm_disk.c and the NIC slots
 * in lua/kvm_nic.c (shared struct: lua/kvm_int.h); this file's method table registers
 * their Lua methods too. */
#include "lua/kvm_int.h"
#include "lua/errors.h"
#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "runner/kernel.h"
#include "vmm/snapshot.h"
#include "vmm/stats.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define RING_SIZE (1u << 20)

struct lkvm {
	struct kvmvm *k;
};

static void ring_put(struct kvmvm *k, char c)
{
	k->ring[k->total++ % RING_SIZE] = c;
}

/* The guest's tty turns "\n" into "\r\n" (ONLCR) on ttyS0 and hvc0; the console is
 * kept as text with "\n" line ends, so a line read from it carries no CR. A CR is
 * held back until the next byte shows whether it ends a line; any other CR is kept. */
static void console_out(void *opaque, const char *buf, size_t len)
{
	struct kvmvm *k = opaque;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (k->cr_pending) {
			k->cr_pending = false;
			if (c != '\n')
				ring_put(k, '\r');
		}
		if (c == '\r')
			k->cr_pending = true;
		else
			ring_put(k, c);
	}
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
	pv_kvm_nics_free(k);
	k->started = false;
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
		if ((err = pv_kvm_disk_attach(k, &k->disks[i])) < 0)
			goto fail;
	return 0;
fail:
	vm_free(k);
	return err;
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
	k->adopted_fd = -1;
	u->k = k;
	return k;
}

/* provium._c_kvm.new{name=, kernel=, initrd=, cmdline=, memory=, cpus=} -> KvmVM,
 * created (devices attached) but not started. */
static int l_new(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	char name[64] = "vm";
	kvm_field_str(L, 1, "name", name, sizeof(name));
	struct kvmvm *k = push_new(L, name);
	if (!kvm_field_str(L, 1, "kernel", k->kernel, sizeof(k->kernel)))
		pv_lua_error(L, "invalid", "lab:vm", name, "no kernel");
	const char *initrd = kvm_field_str(L, 1, "initrd", k->initrd, sizeof(k->initrd));
	const char *cmdline = kvm_field_str(L, 1, "cmdline", k->cmdline, sizeof(k->cmdline));
	k->cfg = (struct vm_config){.name = k->name, .kernel = k->kernel, .initrd = initrd,
				    .cmdline = cmdline,
				    .memory_mib = (unsigned)kvm_field_int(L, 1, "memory", 256),
				    .cpus = (unsigned)kvm_field_int(L, 1, "cpus", 1),
				    .console_out = console_out, .console_opaque = k};
	k->want_slots = (int)kvm_field_int(L, 1, "disk_slots", 0);
	if (k->want_slots < 0 || k->want_slots > KVM_MAX_DISKS)
		pv_lua_error(L, "invalid", "lab:vm", name, "disk_slots must be 0..%d", KVM_MAX_DISKS);
	k->want_nics = (int)kvm_field_int(L, 1, "nic_slots", 0);
	if (k->want_nics < 0 || k->want_nics > KVM_MAX_NICS)
		pv_lua_error(L, "invalid", "lab:vm", name, "nic_slots must be 0..%d", KVM_MAX_NICS);
	kvm_field_str(L, 1, "work_dir", k->work_dir, sizeof(k->work_dir));
	if (vm_build(k) < 0)
		pv_lua_error(L, "infra", "lab:vm", name, "%s", pv_errmsg());
	return 1;
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
	if (pv_kvm_disks_provision(k) < 0 || pv_kvm_nics_provision(k) < 0 ||
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

/* k:exit_stats() -> where the VM's exits went, once it has exited (nil before, or
 * when a vCPU's counters cannot be read): {kvm = {exits=, io_exits=, ...} (KVM's
 * own counters, absent without KVM_GET_STATS_FD), user = exits handled here,
 * sites = {{site = "pio write 0x3f8", count = n}, ...} most frequent first}. */
static int l_exit_stats(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	struct vm_exit_stats st;
	if (!k->vm || !k->started || !k->exited || vm_exit_stats(k->vm, &st) < 0)
		return 0;
	lua_createtable(L, 0, 3);
	if (st.have_kvm) {
		lua_createtable(L, 0, VM_STATS_KVM_N);
		for (unsigned i = 0; i < VM_STATS_KVM_N; i++) {
			lua_pushinteger(L, (lua_Integer)st.kvm[i]);
			lua_setfield(L, -2, vm_stats_kvm_names[i]);
		}
		lua_setfield(L, -2, "kvm");
	}
	lua_pushinteger(L, (lua_Integer)st.user_total);
	lua_setfield(L, -2, "user");
	unsigned n = PV_MIN(st.ntop, 8u);
	lua_createtable(L, (int)n, 0);
	for (unsigned i = 0; i < n; i++) {
		const struct vm_stat_site *t = &st.top[i];
		char site[64];
		if (t->kind == VM_STAT_OTHER)
			snprintf(site, sizeof(site), "KVM exit reason %llu", (unsigned long long)t->addr);
		else
			snprintf(site, sizeof(site), "%s %s 0x%llx", t->kind == VM_STAT_PIO ? "pio" : "mmio",
				 t->write ? "write" : "read", (unsigned long long)t->addr);
		lua_createtable(L, 0, 2);
		lua_pushstring(L, site);
		lua_setfield(L, -2, "site");
		lua_pushinteger(L, (lua_Integer)t->count);
		lua_setfield(L, -2, "count");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "sites");
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

/* k:connect([port [, try]]) -> fd of a new vsock stream to the guest port (default
 * 1024), and its host port. A port nobody listens on yet reads as EOF (the guest
 * answers RST). With `try`, nil (rather than an error) while a restored guest has
 * not yet taken the transport reset: nothing reached the guest, so trying again
 * soon is cheap. */
static int l_connect(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint32_t port = (uint32_t)luaL_optinteger(L, 2, 1024);
	if (!k->vsock || k->exited)
		pv_lua_error(L, "closed", "connect", k->name, "the VM is not running");
	uint32_t hp = 0;
	int fd = virtio_vsock_connect(k->vsock, port, &hp);
	if (fd == -EAGAIN && lua_toboolean(L, 3))
		return 0;
	if (fd < 0)
		pv_lua_error(L, "infra", "connect", k->name, "vsock port %u: %s", port, pv_errmsg());
	lua_pushinteger(L, fd);
	lua_pushinteger(L, hp);
	return 2;
}

/* k:carry(host_port [, guest_port]) -> true when the stream exists: a snapshot saves
 * it whole if it is idle then, and a restore of that snapshot adopts it (the spare
 * agent connection, lua/snapshot.lua). */
static int l_carry(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	uint32_t hp = (uint32_t)luaL_checkinteger(L, 2);
	uint32_t gp = (uint32_t)luaL_optinteger(L, 3, 1024);
	lua_pushboolean(L, k->vsock && virtio_vsock_carry(k->vsock, hp, gp) == 0);
	return 1;
}

/* k:adopted() -> the fd of the agent stream a restore adopted (once), else nil. */
static int l_adopted(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	if (k->adopted_fd < 0)
		return 0;
	lua_pushinteger(L, k->adopted_fd);
	k->adopted_fd = -1;
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

/* Re-creates the devices lua code needs pointers to: vsock (its load brings back
 * the saved CID) and disks (a private copy of the snapshot's image in the work dir). */
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
	if (!strcmp(kind, "virtio-blk"))
		return pv_kvm_disk_restore(k, id, files_dir, c->work_dir);
	if (!strcmp(kind, "virtio-net"))
		return pv_kvm_nic_restore(k, vm, id);
	return -ENOENT;
}

/* provium._c_kvm.restore(dir, name, work_dir) -> KvmVM, running. The guest's old
 * vsock streams are ended (an RST each, or a transport reset for an older snapshot)
 * and the agent, still listening, takes a new connection. */
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
		pv_kvm_nics_free(k);
		k->vsock = NULL;
		pv_lua_error(L, "infra", "snapshot:restore", name, "%s", pv_errmsg());
	}
	k->vm = vm;
	k->started = true;
	if (k->vsock) {
		/* the spare agent stream the snapshot carried, before the rest is reset */
		int fd = virtio_vsock_adopt(k->vsock, 1024, NULL);
		k->adopted_fd = fd >= 0 ? fd : -1;
		virtio_vsock_restored(k->vsock);
		k->cid = virtio_vsock_cid(k->vsock); /* the guest's: the saved VM's */
	}
	pv_kvm_nics_link_down(k);
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

/* k:vsock_stats() -> {streams, opened, rst_sent, rst_received, events_sent, ...}:
 * the vsock device's counters (tests check how a restore ended the old streams). */
static int l_vsock_stats(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	if (!k->vsock)
		return 0;
	struct virtio_vsock_stats st;
	virtio_vsock_stats(k->vsock, &st);
	lua_createtable(L, 0, 10);
	const struct { const char *k; uint64_t v; } f[] = {
		{"streams", st.streams}, {"opened", st.opened}, {"rst_sent", st.rst_sent},
		{"rst_received", st.rst_received}, {"to_guest_bytes", st.to_guest_bytes},
		{"to_host_bytes", st.to_host_bytes}, {"credit_stalls", st.credit_stalls},
		{"dropped_packets", st.dropped_packets}, {"events_sent", st.events_sent},
		{"adopted", st.adopted},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		lua_pushinteger(L, (lua_Integer)f[i].v);
		lua_setfield(L, -2, f[i].k);
	}
	return 1;
}

/* k:prewritten() -> pages of guest RAM the restore copied in before the guest ran
 * (the last restore's write set; 0 for a boot), for tests and the bench. */
static int l_prewritten(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_pushinteger(L, k->vm ? (lua_Integer)vm_restore_prewritten(k->vm) : 0);
	return 1;
}

/* k:ram_warm() -> whether this restore took the RAM of the VM its snapshot was
 * taken of (vmm/snapshot_warm.c), for tests and the bench. */
static int l_ram_warm(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	lua_pushboolean(L, k->vm && vm_ram_warm(k->vm));
	return 1;
}

/* provium._c_kvm.warm_stats() -> {usable, cached, given, taken, evicted, dirty_pages,
 * repaired_pages}: the process's handed-over RAMs (vmm/snapshot_warm.c). usable is
 * "yes", "no" (this kernel keeps no soft-dirty bits) or "unknown" (no snapshot yet). */
static int l_warm_stats(lua_State *L)
{
	struct snapshot_warm_stats s;
	snapshot_warm_stats(&s);
	lua_createtable(L, 0, 7);
	lua_pushstring(L, s.usable > 0 ? "yes" : s.usable < 0 ? "no" : "unknown");
	lua_setfield(L, -2, "usable");
	const struct { const char *k; uint64_t v; } f[] = {
		{"cached", s.cached}, {"given", s.given}, {"taken", s.taken}, {"evicted", s.evicted},
		{"dirty_pages", s.dirty_pages}, {"repaired_pages", s.repaired_pages},
	};
	for (size_t i = 0; i < PV_ARRAY_SIZE(f); i++) {
		lua_pushinteger(L, (lua_Integer)f[i].v);
		lua_setfield(L, -2, f[i].k);
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
	if (k->adopted_fd >= 0)
		close(k->adopted_fd);
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
		{"add_disk", pv_kvm_l_add_disk}, {"start", l_start}, {"poll", l_poll}, {"halt", l_halt},
		{"exit_stats", l_exit_stats},
		{"power_loss", pv_kvm_l_power_loss}, {"pause", l_pause}, {"resume", l_resume},
		{"connect", l_connect}, {"console_pos", l_console_pos},
		{"console_read", l_console_read}, {"console_write", l_console_write},
		{"clock_advance", l_clock_advance}, {"clock_get", l_clock_get},
		{"snapshot", l_snapshot}, {"info", l_info}, {"vsock_stats", l_vsock_stats}, {"prewritten", l_prewritten}, {"ram_warm", l_ram_warm}, {"carry", l_carry}, {"adopted", l_adopted}, {"pid", l_pid}, {"ndisks", pv_kvm_l_ndisks}, {"slots", pv_kvm_l_slots},
		{"add_nic", pv_kvm_l_add_nic}, {"nic_take", pv_kvm_l_nic_take}, {"nic_fd", pv_kvm_l_nic_fd},
		{"nic_link", pv_kvm_l_nic_link}, {"nic_release", pv_kvm_l_nic_release}, {"nic_slots", pv_kvm_l_nic_slots},
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
		{"kernel_paths", l_kernel_paths}, {"warm_stats", l_warm_stats}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_kvm");
	}
	lua_pop(L, 1);
	return 0;
}
