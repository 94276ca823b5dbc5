/* disk.c — the Disk userdata (API.md "Disk"): one virtio-blk slot of a kvm-backend
 * VM (lua/kvm.c), wrapping devices/virtio_blk.h: host-side sector I/O, size, stats,
 * fault rules (fail_reads, fail_writes, slow, drop_writes, corrupt), cache mode,
 * clear_faults, faults, detach. A Disk follows its slot across restarts of the VM
 * (the image stays; fault rules belong to the device and start empty after a restart;
 * the cache mode is kept). Exposed as provium._c_disk.new(kvmvm, slot). */
#include "lua/kvm.h"
#include "lua/errors.h"
#include "lua/opts.h"
#include "devices/virtio_blk.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define DISK_MT "provium.Disk"

struct ldisk {
	int slot; /* 0-based */
};

/* The Disk at index 1 and its live device; raises `invalid` for a dot call
 * (disk.size()) and `closed` when the VM has none. */
static struct virtio_blk *check_disk(lua_State *L, const char *op, struct kvmvm **kp,
				     int *slot, const char **id)
{
	struct ldisk *d = luaL_testudata(L, 1, DISK_MT);
	if (!d)
		pv_self_error(L, op, 1, "Disk");
	lua_getiuservalue(L, 1, 1);
	struct kvmvm *k = pv_kvm_check(L, -1);
	lua_pop(L, 1);
	const char *nm = NULL;
	struct virtio_blk *b = pv_kvm_disk(k, d->slot, &nm, NULL);
	if (!b)
		pv_lua_error(L, "closed", op, pv_kvm_name(k), "disk %s: the VM has no live device "
			     "(destroyed)", nm ? nm : "?");
	if (kp)
		*kp = k;
	if (slot)
		*slot = d->slot;
	if (id)
		*id = nm;
	return b;
}

/* provium._c_disk.new(kvmvm, slot) -> Disk (slot 1-based) */
static int l_new(lua_State *L)
{
	pv_kvm_check(L, 1);
	int slot = (int)luaL_checkinteger(L, 2) - 1;
	struct ldisk *d = lua_newuserdatauv(L, sizeof(*d), 1);
	d->slot = slot;
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, DISK_MT);
	return 1;
}

static int l_read_sectors(lua_State *L)
{
	const char *id;
	struct virtio_blk *b = check_disk(L, "disk:read_sectors", NULL, NULL, &id);
	pv_arg_check(L, 2, "uint", "disk:read_sectors", id, "lba", 0);
	pv_arg_check(L, 3, "uint", "disk:read_sectors", id, "count", 1);
	lua_Integer lba = lua_tointeger(L, 2), count = lua_isnoneornil(L, 3) ? 1 : lua_tointeger(L, 3);
	uint64_t sectors = virtio_blk_size(b) / VIRTIO_BLK_SECTOR;
	if (lba < 0 || count < 0 || (uint64_t)lba + (uint64_t)count > sectors)
		pv_lua_error(L, "invalid", "disk:read_sectors", id, "sectors %lld+%lld are outside "
			     "the disk (%llu sectors)", (long long)lba, (long long)count,
			     (unsigned long long)sectors);
	luaL_Buffer buf;
	char *p = luaL_buffinitsize(L, &buf, (size_t)count * VIRTIO_BLK_SECTOR);
	if (virtio_blk_read_sectors(b, (uint64_t)lba, (uint64_t)count, p) < 0)
		pv_lua_error(L, "infra", "disk:read_sectors", id, "%s", pv_errmsg());
	luaL_pushresultsize(&buf, (size_t)count * VIRTIO_BLK_SECTOR);
	return 1;
}

static int l_write_sectors(lua_State *L)
{
	const char *id;
	struct virtio_blk *b = check_disk(L, "disk:write_sectors", NULL, NULL, &id);
	pv_arg_check(L, 2, "uint", "disk:write_sectors", id, "lba", 0);
	pv_arg_check(L, 3, "string", "disk:write_sectors", id, "data", 0);
	lua_Integer lba = lua_tointeger(L, 2);
	size_t n;
	const char *data = lua_tolstring(L, 3, &n);
	if (n % VIRTIO_BLK_SECTOR)
		pv_lua_error(L, "invalid", "disk:write_sectors", id, "data is %zu bytes, not a "
			     "multiple of 512", n);
	uint64_t count = n / VIRTIO_BLK_SECTOR;
	if (lba < 0 || (uint64_t)lba + count > virtio_blk_size(b) / VIRTIO_BLK_SECTOR)
		pv_lua_error(L, "invalid", "disk:write_sectors", id, "sectors %lld+%llu are "
			     "outside the disk", (long long)lba, (unsigned long long)count);
	if (virtio_blk_write_sectors(b, (uint64_t)lba, data, count) < 0)
		pv_lua_error(L, "infra", "disk:write_sectors", id, "%s", pv_errmsg());
	return 0;
}

static int l_size(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)virtio_blk_size(check_disk(L, "disk:size", NULL, NULL, NULL)));
	return 1;
}

static int l_stats(lua_State *L)
{
	struct virtio_blk_stats s;
	virtio_blk_get_stats(check_disk(L, "disk:stats", NULL, NULL, NULL), &s);
	lua_createtable(L, 0, 6);
	const struct { const char *k; uint64_t v; } f[] = {
		{"reads", s.reads}, {"writes", s.writes}, {"read_bytes", s.read_bytes},
		{"write_bytes", s.write_bytes}, {"flushes", s.flushes}, {"errors", s.errors},
	};
	for (size_t i = 0; i < PV_ARRAY_SIZE(f); i++) {
		lua_pushinteger(L, (lua_Integer)f[i].v);
		lua_setfield(L, -2, f[i].k);
	}
	return 1;
}

/* The options of the fault rules; the opts table is checked against them first
 * (pv_opts_check), so the readers below only pick values. */
#define RANGE_OPTS "count:uint from:uint probability:rate seed:int to:uint"

/* the rule's VM name, for option errors */
static const char *vm_name(lua_State *L, const char *op)
{
	struct kvmvm *k;
	check_disk(L, op, &k, NULL, NULL);
	return pv_kvm_name(k);
}

static lua_Integer opt_int(lua_State *L, int t, const char *k, lua_Integer def)
{
	if (lua_type(L, t) != LUA_TTABLE)
		return def;
	lua_getfield(L, t, k);
	lua_Integer v = lua_isnil(L, -1) ? def : lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

static double opt_num(lua_State *L, int t, const char *k, double def)
{
	if (lua_type(L, t) != LUA_TTABLE)
		return def;
	lua_getfield(L, t, k);
	double v = lua_isnil(L, -1) ? def : lua_tonumber(L, -1);
	lua_pop(L, 1);
	return v;
}

static bool opt_bool(lua_State *L, int t, const char *k)
{
	if (lua_type(L, t) != LUA_TTABLE)
		return false;
	lua_getfield(L, t, k);
	bool v = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Adds a rule from the checked opts at index `t` ({from=, to=, count=, probability=,
 * seed=}); returns its id. */
static int add_rule(lua_State *L, const char *op, struct virtio_blk_fault *f, int t)
{
	const char *id;
	struct virtio_blk *b = check_disk(L, op, NULL, NULL, &id);
	lua_Integer from = opt_int(L, t, "from", 0);
	lua_Integer to = opt_int(L, t, "to", (lua_Integer)(virtio_blk_size(b) / VIRTIO_BLK_SECTOR) - 1);
	lua_Integer count = opt_int(L, t, "count", 0);
	if (from < 0 || to < from || count < 0)
		pv_lua_error(L, "invalid", op, id, "bad range from=%lld to=%lld count=%lld",
			     (long long)from, (long long)to, (long long)count);
	f->from = (uint64_t)from;
	f->to = (uint64_t)to;
	f->count = (uint64_t)count;
	f->probability = opt_num(L, t, "probability", 1.0);
	f->seed = (uint64_t)opt_int(L, t, "seed", 0);
	int r = virtio_blk_fault_add(b, f);
	if (r < 0)
		pv_lua_error(L, "invalid", op, id, "%s", pv_errmsg());
	lua_pushinteger(L, r);
	return 1;
}

static int l_fail_reads(lua_State *L)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_READS);
	pv_opts_check(L, 2, "disk:fail_reads", vm_name(L, "disk:fail_reads"), RANGE_OPTS);
	return add_rule(L, "disk:fail_reads", &f, 2);
}

static int l_fail_writes(lua_State *L)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_FAIL_WRITES);
	pv_opts_check(L, 2, "disk:fail_writes", vm_name(L, "disk:fail_writes"), RANGE_OPTS);
	return add_rule(L, "disk:fail_writes", &f, 2);
}

static int l_drop_writes(lua_State *L)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_DROP_WRITES);
	pv_opts_check(L, 2, "disk:drop_writes", vm_name(L, "disk:drop_writes"), RANGE_OPTS);
	return add_rule(L, "disk:drop_writes", &f, 2);
}

/* disk:slow(ms [, {writes_only=, reads_only=, from=, to=, count=}]) */
static int l_slow(lua_State *L)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_SLOW);
	const char *vm = vm_name(L, "disk:slow");
	pv_arg_check(L, 2, "uint", "disk:slow", vm, "ms", 0);
	pv_opts_check(L, 3, "disk:slow", vm, RANGE_OPTS " reads_only:bool writes_only:bool");
	f.delay_ms = (unsigned)lua_tointeger(L, 2);
	f.reads_only = opt_bool(L, 3, "reads_only");
	f.writes_only = opt_bool(L, 3, "writes_only");
	return add_rule(L, "disk:slow", &f, 3);
}

/* disk:corrupt(lba [, {offset=, xor=, to=, count=}]) */
static int l_corrupt(lua_State *L)
{
	struct virtio_blk_fault f;
	virtio_blk_fault_init(&f, VIRTIO_BLK_CORRUPT);
	const char *vm = vm_name(L, "disk:corrupt");
	pv_arg_check(L, 2, "uint", "disk:corrupt", vm, "lba", 0);
	pv_opts_check(L, 3, "disk:corrupt", vm, "count:uint offset:uint probability:rate seed:int to:uint xor:byte");
	lua_Integer lba = lua_tointeger(L, 2);
	f.offset = (unsigned)opt_int(L, 3, "offset", 0);
	f.xor = (uint8_t)opt_int(L, 3, "xor", 0xff);
	/* the range starts at lba; opts.to widens it */
	lua_newtable(L);
	lua_pushinteger(L, lba);
	lua_setfield(L, -2, "from");
	lua_pushinteger(L, opt_int(L, 3, "to", lba));
	lua_setfield(L, -2, "to");
	lua_pushinteger(L, opt_int(L, 3, "count", 0));
	lua_setfield(L, -2, "count");
	lua_pushnumber(L, opt_num(L, 3, "probability", 1.0));
	lua_setfield(L, -2, "probability");
	lua_pushinteger(L, opt_int(L, 3, "seed", 0));
	lua_setfield(L, -2, "seed");
	return add_rule(L, "disk:corrupt", &f, lua_gettop(L));
}

static int l_cache(lua_State *L)
{
	struct kvmvm *k;
	int slot;
	const char *id;
	struct virtio_blk *b = check_disk(L, "disk:cache", &k, &slot, &id);
	if (lua_isnoneornil(L, 2)) {
		lua_pushstring(L, virtio_blk_get_cache(b) == VIRTIO_BLK_CACHE_WRITEBACK ? "writeback" : "none");
		return 1;
	}
	pv_arg_check(L, 2, "writeback|none", "disk:cache", id, "mode", 0);
	const char *mode = lua_tostring(L, 2);
	bool wb = !strcmp(mode, "writeback");
	if (virtio_blk_set_cache(b, wb ? VIRTIO_BLK_CACHE_WRITEBACK : VIRTIO_BLK_CACHE_NONE) < 0)
		pv_lua_error(L, "infra", "disk:cache", id, "%s", pv_errmsg());
	pv_kvm_disk_set_cache(k, slot, wb);
	lua_pushstring(L, mode);
	return 1;
}

static int l_clear_faults(lua_State *L)
{
	virtio_blk_faults_clear(check_disk(L, "disk:clear_faults", NULL, NULL, NULL));
	return 0;
}

/* disk:faults() -> array of {id=, kind=, from=, to=, count=, probability=, hits=, ...} */
static int l_faults(lua_State *L)
{
	struct virtio_blk *b = check_disk(L, "disk:faults", NULL, NULL, NULL);
	struct virtio_blk_fault f[64];
	size_t n = virtio_blk_faults_list(b, f, PV_ARRAY_SIZE(f));
	if (n > PV_ARRAY_SIZE(f))
		n = PV_ARRAY_SIZE(f);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 10);
		lua_pushinteger(L, f[i].id);
		lua_setfield(L, -2, "id");
		lua_pushstring(L, virtio_blk_fault_kind_name(f[i].kind));
		lua_setfield(L, -2, "kind");
		lua_pushinteger(L, (lua_Integer)f[i].from);
		lua_setfield(L, -2, "from");
		lua_pushinteger(L, (lua_Integer)f[i].to);
		lua_setfield(L, -2, "to");
		lua_pushinteger(L, (lua_Integer)f[i].count);
		lua_setfield(L, -2, "count");
		lua_pushnumber(L, f[i].probability);
		lua_setfield(L, -2, "probability");
		lua_pushinteger(L, (lua_Integer)f[i].hits);
		lua_setfield(L, -2, "hits");
		if (f[i].kind == VIRTIO_BLK_SLOW) {
			lua_pushinteger(L, f[i].delay_ms);
			lua_setfield(L, -2, "ms");
		}
		if (f[i].kind == VIRTIO_BLK_CORRUPT) {
			lua_pushinteger(L, f[i].offset);
			lua_setfield(L, -2, "offset");
			lua_pushinteger(L, f[i].xor);
			lua_setfield(L, -2, "xor");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int l_detach(lua_State *L)
{
	const char *id;
	struct virtio_blk *b = check_disk(L, "disk:detach", NULL, NULL, &id);
	if (virtio_blk_detach(b) < 0)
		pv_lua_error(L, "infra", "disk:detach", id, "%s", pv_errmsg());
	return 0;
}

static int l_detached(lua_State *L)
{
	lua_pushboolean(L, virtio_blk_detached(check_disk(L, "disk:detached", NULL, NULL, NULL)));
	return 1;
}

static int l_dirty_bytes(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)virtio_blk_dirty_bytes(check_disk(L, "disk:dirty_bytes", NULL, NULL, NULL)));
	return 1;
}

/* d.name, d.path, d.slot as fields; everything else is a method */
static int l_index(lua_State *L)
{
	struct ldisk *d = luaL_checkudata(L, 1, DISK_MT); /* only Disks have this __index */
	const char *key = luaL_checkstring(L, 2);
	if (!strcmp(key, "name") || !strcmp(key, "path")) {
		lua_getiuservalue(L, 1, 1);
		struct kvmvm *k = pv_kvm_check(L, -1);
		const char *id = NULL, *path = NULL;
		pv_kvm_disk(k, d->slot, &id, &path);
		lua_pushstring(L, !strcmp(key, "name") ? id : path);
		return 1;
	}
	if (!strcmp(key, "slot")) {
		lua_pushinteger(L, d->slot + 1);
		return 1;
	}
	luaL_getmetatable(L, DISK_MT);
	lua_getfield(L, -1, "methods");
	lua_getfield(L, -1, key);
	if (lua_isnil(L, -1) && key[0] != '_')
		pv_lua_error(L, "invalid", lua_pushfstring(L, "disk.%s", key), NULL,
			     "Disk has no method or field '%s'", key);
	return 1;
}

static int l_tostring(lua_State *L)
{
	struct ldisk *d = luaL_checkudata(L, 1, DISK_MT);
	lua_getiuservalue(L, 1, 1);
	struct lkvm_probe { struct kvmvm *k; } *u = lua_touserdata(L, -1);
	const char *id = "?", *path = "?";
	if (u && u->k)
		pv_kvm_disk(u->k, d->slot, &id, &path);
	lua_pushfstring(L, "Disk(%s, %s)", id, path);
	return 1;
}

int pv_luaopen_disk(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"read_sectors", l_read_sectors}, {"write_sectors", l_write_sectors},
		{"size", l_size}, {"stats", l_stats}, {"fail_reads", l_fail_reads},
		{"fail_writes", l_fail_writes}, {"slow", l_slow}, {"drop_writes", l_drop_writes},
		{"corrupt", l_corrupt}, {"cache", l_cache}, {"clear_faults", l_clear_faults},
		{"faults", l_faults}, {"detach", l_detach}, {"detached", l_detached},
		{"dirty_bytes", l_dirty_bytes}, {NULL, NULL},
	};
	if (luaL_newmetatable(L, DISK_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "methods");
		lua_pushcfunction(L, l_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {{"new", l_new}, {NULL, NULL}};
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_disk");
	}
	lua_pop(L, 1);
	return 0;
}
