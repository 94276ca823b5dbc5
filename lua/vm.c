/* vm.c — the C half of the VM API: the Sandbox userdata (the sandbox backend's
 * handle: start, kill, pause, console ring, worker connections), backend probing and
 * the binary's own directory (for profiles and the rootfs). The VM object itself and
 * every blocking method live in lua/vm.lua on top of the scheduler; this file only does
 * non-blocking work. Exposed as provium._c_vm. */
#include "lua/errors.h"
#include "lua/sandbox.h"
#include "runner/doctor.h"
#include "runner/kept.h"
#include "runner/layout.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define SANDBOX_MT "provium.Sandbox"

struct lsandbox {
	struct sandbox *sb;
	char name[64];
};

static struct lsandbox *check_sb(lua_State *L, int i)
{
	struct lsandbox *s = luaL_checkudata(L, i, SANDBOX_MT);
	if (!s->sb)
		pv_lua_error(L, "closed", "sandbox", s->name, "the sandbox was freed");
	return s;
}

/* provium._c_vm.sandbox_start{name=, rootfs=, env={K=V...}, no_init=, keepable=} -> Sandbox */
static int l_sandbox_start(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "name");
	const char *name = luaL_optstring(L, -1, "sandbox");
	lua_getfield(L, 1, "rootfs");
	const char *rootfs = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 1, "no_init");
	bool no_init = lua_toboolean(L, -1);
	lua_getfield(L, 1, "keepable");
	bool keepable = lua_toboolean(L, -1);
	/* env table -> "K=V" strings (copied: freed after the start) */
	char *env[48];
	size_t ne = 0;
	lua_getfield(L, 1, "env");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2) && ne < PV_ARRAY_SIZE(env) - 1) {
			if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TSTRING ||
							       lua_type(L, -1) == LUA_TNUMBER)) {
				const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
				size_t len = strlen(k) + strlen(v) + 2;
				if ((env[ne] = malloc(len)))
					snprintf(env[ne++], len, "%s=%s", k, v);
			}
			lua_pop(L, 1);
		}
	}
	env[ne] = NULL;
	struct sandbox_config cfg = {.name = name, .rootfs = rootfs,
				     .env = (const char *const *)env, .no_init = no_init,
				     .keepable = keepable};
	struct lsandbox *s = lua_newuserdatauv(L, sizeof(*s), 0);
	s->sb = NULL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	luaL_setmetatable(L, SANDBOX_MT);
	int r = sandbox_start(&cfg, &s->sb);
	for (size_t i = 0; i < ne; i++)
		free(env[i]);
	if (r < 0)
		pv_lua_error(L, "infra", "start", name, "%s", pv_errmsg());
	return 1;
}

/* sb:agent_fd() -> a dup of the agent socket (the caller's AgentConn owns it) */
static int l_agent_fd(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	int fd = sandbox_agent_fd(s->sb);
	if (fd < 0)
		pv_lua_error(L, "closed", "connect", s->name, "the sandbox is not running");
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		pv_lua_error(L, "infra", "connect", s->name, "dup: %s", strerror(errno));
	lua_pushinteger(L, d);
	return 1;
}

static int l_connect(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	int fd = sandbox_connect(s->sb);
	if (fd < 0)
		pv_lua_error(L, fd == -ESRCH ? "closed" : "infra", "worker", s->name, "%s", pv_errmsg());
	lua_pushinteger(L, fd);
	return 1;
}

static int l_pid(lua_State *L)
{
	lua_pushinteger(L, sandbox_pid(check_sb(L, 1)->sb));
	return 1;
}

static int l_rootfs(lua_State *L)
{
	lua_pushstring(L, sandbox_rootfs(check_sb(L, 1)->sb));
	return 1;
}

static int l_userns(lua_State *L)
{
	lua_pushboolean(L, sandbox_userns(check_sb(L, 1)->sb));
	return 1;
}

/* sb:keep(file, tmpdir) -> keeper pid, listed: the sandbox outlives this worker (--keep; see
 * sandbox_keep), recorded in the kept-VM registry (runner/kept.h) with its console, so
 * `provium ps|shell|console|kill` find it. A registry that cannot be written still
 * keeps the VM (the run says how to reach it by pid). */
static int l_keep(lua_State *L)
{
	struct lsandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
	const char *file = luaL_optstring(L, 2, ""), *tmp = luaL_optstring(L, 3, "");
	char abs[PATH_MAX], dir[PATH_MAX], console[PATH_MAX + 32];
	bool reg = s->sb && pv_kept_dir(dir, sizeof(dir), true);
	pid_t pid = s->sb ? sandbox_pid(s->sb) : 0;

	if (*file && realpath(file, abs))
		file = abs;
	struct pv_kept e = { .pid = pid, .backend = "sandbox" };

	if (reg)
		pv_kept_path(console, sizeof(console), dir, &e, "console");
	pid_t k = s->sb ? sandbox_keep(s->sb, reg ? console : NULL) : -ESRCH;
	if (k < 0)
		return pv_lua_error(L, "infra", "vm:keep", s->name, "%s",
				    s->sb ? pv_errmsg() : "sandbox freed");
	if (reg) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		e.keeper = k;
		e.userns = sandbox_userns(s->sb);
		e.starttime = pv_kept_starttime(pid);
		e.since = (double)now.tv_sec + now.tv_nsec / 1e9;
		snprintf(e.name, sizeof(e.name), "%s", s->name);
		snprintf(e.file, sizeof(e.file), "%s", file);
		snprintf(e.tmp, sizeof(e.tmp), "%s", tmp);
		reg = pv_kept_add(&e) == 0;
	}
	lua_pushinteger(L, k);
	lua_pushboolean(L, reg);
	return 2;
}

static int l_kill(lua_State *L)
{
	struct lsandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
	if (s->sb)
		sandbox_kill(s->sb);
	return 0;
}

/* sb:exited() -> false, or true + {code=, signal=} of PID 1 */
static int l_exited(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	int st;
	if (!sandbox_exited(s->sb, &st)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushboolean(L, 1);
	lua_createtable(L, 0, 2);
	if (WIFEXITED(st)) {
		lua_pushinteger(L, WEXITSTATUS(st));
		lua_setfield(L, -2, "code");
	} else if (WIFSIGNALED(st)) {
		lua_pushinteger(L, WTERMSIG(st));
		lua_setfield(L, -2, "signal");
	}
	return 2;
}

static int l_pause(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	if (sandbox_pause(s->sb) < 0)
		pv_lua_error(L, "infra", "pause", s->name, "%s", pv_errmsg());
	return 0;
}

static int l_resume(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	if (sandbox_resume(s->sb) < 0)
		pv_lua_error(L, "infra", "resume", s->name, "%s", pv_errmsg());
	return 0;
}

static int l_console_pos(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)sandbox_console_pos(check_sb(L, 1)->sb));
	return 1;
}

/* sb:console_read(pos [, max]) -> data, newpos, eof */
static int l_console_read(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	uint64_t pos = (uint64_t)luaL_optinteger(L, 2, 0);
	size_t max = (size_t)luaL_optinteger(L, 3, SANDBOX_CONSOLE_SIZE);
	if (max > SANDBOX_CONSOLE_SIZE)
		max = SANDBOX_CONSOLE_SIZE;
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, max);
	size_t n = sandbox_console_read(s->sb, &pos, p, max);
	luaL_pushresultsize(&b, n);
	lua_pushinteger(L, (lua_Integer)pos);
	lua_pushboolean(L, sandbox_console_eof(s->sb));
	return 3;
}

static int l_console_write(lua_State *L)
{
	struct lsandbox *s = check_sb(L, 1);
	size_t n;
	const char *d = luaL_checklstring(L, 2, &n);
	ssize_t w = sandbox_console_write(s->sb, d, n);
	if (w < 0)
		pv_lua_error(L, "closed", "console:write", s->name, "%s", pv_errmsg());
	lua_pushinteger(L, w);
	return 1;
}

static int l_gc(lua_State *L)
{
	struct lsandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
	sandbox_free(s->sb);
	s->sb = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct lsandbox *s = luaL_checkudata(L, 1, SANDBOX_MT);
	lua_pushfstring(L, "Sandbox(%s, pid %d)", s->name, s->sb ? (int)sandbox_pid(s->sb) : -1);
	return 1;
}

/* provium._c_vm.kvm_linux_ok() -> bool, reason: can /dev/kvm run Linux guests here?
 * (provium doctor's probe, runner/doctor.h, is the one source of truth) */
static int l_kvm_linux_ok(lua_State *L)
{
	char why[256] = "";
	int ok = doctor_linux_guests_ok(why, sizeof(why));
	lua_pushboolean(L, ok);
	lua_pushstring(L, why[0] ? why : (ok ? "hardware KVM" : "unknown"));
	return 2;
}

/* The running binary's directory (build/ in a checkout; runner/layout.h). */
static int l_self_dir(lua_State *L)
{
	lua_pushstring(L, layout_exe_dir());
	return 1;
}

static int l_default_rootfs(lua_State *L)
{
	const char *r = sandbox_default_rootfs();
	if (r)
		lua_pushstring(L, r);
	else
		lua_pushnil(L);
	return 1;
}

/* provium._c_vm.note_once(path) -> true the first time any process creates path */
static int l_note_once(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	lua_pushboolean(L, fd >= 0 || errno != EEXIST);
	return 1;
}

/* provium._c_vm.wall_ns() -> host CLOCK_REALTIME ns */
static int l_wall_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)pv_wall_ns());
	return 1;
}

static int l_mono_ns(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)pv_now_ns());
	return 1;
}

int pv_luaopen_vm(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"agent_fd", l_agent_fd}, {"connect", l_connect}, {"pid", l_pid},
		{"rootfs", l_rootfs}, {"userns", l_userns}, {"kill", l_kill}, {"keep", l_keep}, {"exited", l_exited},
		{"pause", l_pause}, {"resume", l_resume}, {"console_pos", l_console_pos},
		{"console_read", l_console_read}, {"console_write", l_console_write},
		{"free", l_gc}, {NULL, NULL},
	};
	if (luaL_newmetatable(L, SANDBOX_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	static const luaL_Reg funcs[] = {
		{"sandbox_start", l_sandbox_start}, {"kvm_linux_ok", l_kvm_linux_ok},
		{"self_dir", l_self_dir}, {"default_rootfs", l_default_rootfs},
		{"note_once", l_note_once}, {"wall_ns", l_wall_ns}, {"mono_ns", l_mono_ns},
		{NULL, NULL},
	};
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_vm");
	}
	lua_pop(L, 1);
	return 0;
}
