/* snapshot.c — file-system helpers for the Lua snapshot objects (lua/snapshot.lua):
 * the snapshot cache directory, listing, renaming and removing snapshot directories,
 * their size on disk, and the content hash that keys fixture builds. The snapshots
 * themselves are written and restored by lua/kvm.c (vm_snapshot / vm_restore).
 * Also the flock() lock files that serialise fixture builds across workers and runs.
 * Exposed as provium._c_snap. */
#include "lua/errors.h"
#include "runner/kernel.h"
#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

/* _c_snap.cache_dir() -> the provium cache dir (not created), or nil, message */
static int l_cache_dir(lua_State *L)
{
	char d[PATH_MAX];
	if (kernel_cache_dir(d, sizeof(d)) < 0) {
		lua_pushnil(L);
		lua_pushstring(L, pv_errmsg());
		return 2;
	}
	lua_pushstring(L, d);
	return 1;
}

/* _c_snap.mkdir_p(path) -> true or raises infra */
static int l_mkdir_p(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", p);
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			pv_lua_error(L, "infra", "snapshot", NULL, "mkdir %s: %s", buf, strerror(errno));
		*s = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		pv_lua_error(L, "infra", "snapshot", NULL, "mkdir %s: %s", buf, strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

static int l_du(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)snapshot_du(luaL_checkstring(L, 1)));
	return 1;
}

static int l_rm_tree(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	char mem[PATH_MAX];
	/* a snapshot's directory: the RAM cached for its restore goes with it */
	if (snprintf(mem, sizeof(mem), "%s/%s", p, SNAPSHOT_MEMORY_FILE) < (int)sizeof(mem))
		snapshot_warm_forget(mem);
	int err = snapshot_rm_tree(p);
	if (err < 0 && err != -ENOENT)
		pv_lua_error(L, "infra", "snapshot:delete", NULL, "%s: %s", p, strerror(-err));
	return 0;
}

/* _c_snap.rename(a, b): replaces b (a directory tree) atomically where it can */
static int l_rename(lua_State *L)
{
	const char *a = luaL_checkstring(L, 1), *b = luaL_checkstring(L, 2);
	if (rename(a, b) < 0) {
		if (errno != ENOTEMPTY && errno != EEXIST)
			pv_lua_error(L, "infra", "snapshot", NULL, "rename %s -> %s: %s", a, b, strerror(errno));
		snapshot_rm_tree(b);
		if (rename(a, b) < 0)
			pv_lua_error(L, "infra", "snapshot", NULL, "rename %s -> %s: %s", a, b, strerror(errno));
	}
	return 0;
}

/* _c_snap.ls(dir) -> sorted array of entry names (no . and ..); {} when missing */
static int l_ls(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	lua_newtable(L);
	DIR *d = opendir(p);
	if (!d)
		return 1;
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			lua_pushstring(L, e->d_name);
			lua_rawseti(L, -2, ++n);
		}
	closedir(d);
	lua_getglobal(L, "table");
	lua_getfield(L, -1, "sort");
	lua_pushvalue(L, -3);
	lua_call(L, 1, 0);
	lua_pop(L, 1);
	return 1;
}

/* _c_snap.isdir(path), _c_snap.isfile(path) */
static int l_isdir(lua_State *L)
{
	struct stat st;
	lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
	return 1;
}

static int l_isfile(lua_State *L)
{
	struct stat st;
	lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISREG(st.st_mode));
	return 1;
}

/* 64-bit FNV-1a, continued from h */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

/* A file's contents hash, remembered by the file's identity (device, inode, size,
 * change time): a fixture key hashes the guest kernel and initramfs on every
 * lab:vm, ~20 MB, which cost a pooled VM's lab:vm ~120 ms in a nested host. */
struct file_hash {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	uint64_t h;
};
static struct file_hash file_hashes[16];
static unsigned file_hashes_next;

static bool same_file(const struct file_hash *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* The FNV-1a of the file's bytes on its own (from the offset basis); -errno. */
static int hash_file(const char *path, uint64_t *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	for (unsigned i = 0; i < PV_ARRAY_SIZE(file_hashes); i++)
		if (file_hashes[i].ino && same_file(&file_hashes[i], &st)) {
			close(fd);
			*out = file_hashes[i].h;
			return 0;
		}
	uint64_t h = 14695981039346656037ull;
	char buf[65536];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		h = fnv(h, buf, (size_t)r);
	int e = r < 0 ? -errno : 0;
	close(fd);
	if (e)
		return e;
	struct file_hash *f = &file_hashes[file_hashes_next++ % PV_ARRAY_SIZE(file_hashes)];
	*f = (struct file_hash){.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
				.mtime = st.st_mtim, .ctime = st.st_ctim, .h = h};
	*out = h;
	return 0;
}

/* _c_snap.hash(parts) -> 16 hex digits over every part in order; a part
 * {file=path} adds the hash of the file's contents (raises infra when
 * unreadable). */
static int l_hash(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	uint64_t h = 14695981039346656037ull;
	lua_Integer n = luaL_len(L, 1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, "file");
			const char *path = luaL_checkstring(L, -1);
			uint64_t fh;
			int err = hash_file(path, &fh);
			if (err)
				pv_lua_error(L, "infra", "fixture", NULL, "%s: %s", path, strerror(-err));
			h = fnv(h, &fh, sizeof(fh));
			lua_pop(L, 1);
		} else {
			size_t len;
			const char *s = luaL_checklstring(L, -1, &len);
			h = fnv(h, s, len);
			h = fnv(h, "\0", 1);
		}
		lua_pop(L, 1);
	}
	char hex[17];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)h);
	lua_pushstring(L, hex);
	return 1;
}

/* _c_snap.trylock(path) -> fd holding an exclusive flock() on path (created when
 * missing), or false when another open file holds it; raises infra otherwise. The
 * kernel drops the lock when the fd is closed or the process dies. */
static int l_trylock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		pv_lua_error(L, "infra", "fixture", NULL, "lock %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK || e == EINTR) {
			lua_pushboolean(L, 0);
			return 1;
		}
		pv_lua_error(L, "infra", "fixture", NULL, "flock %s: %s", path, strerror(e));
	}
	lua_pushinteger(L, fd);
	return 1;
}

/* _c_snap.unlock(fd): closes a trylock fd (and so releases the lock) */
static int l_unlock(lua_State *L)
{
	lua_Integer fd = luaL_checkinteger(L, 1);
	if (fd >= 0)
		close((int)fd);
	return 0;
}

int pv_luaopen_snapshot(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"cache_dir", l_cache_dir}, {"mkdir_p", l_mkdir_p}, {"du", l_du},
		{"rm_tree", l_rm_tree}, {"rename", l_rename}, {"ls", l_ls}, {"isdir", l_isdir},
		{"isfile", l_isfile}, {"hash", l_hash}, {"trylock", l_trylock},
		{"unlock", l_unlock}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_snap");
	}
	lua_pop(L, 1);
	return 0;
}
