/* runfile.c — runs one test file in a forked worker (runner/worker.h): makes the Lua
 * state (standard libs, every lua/<x>.c opener, the embedded lua/<x>.lua with prelude.lua
 * first), fills provium._config from the worker args, then hands over to
 * provium._main (testlib.lua), which loads the file, runs or lists its tests, emits the
 * events and tears the root lab down. Exit status: 0 the file ran, 1 it failed to load
 * or crashed at file level (a file_end with error was sent). In list mode only
 * test_listed events are sent (plus a file_end with error if the file fails to load). */
#include "runner/worker.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua/chan.h"
#include "lua/embed.h"
#include "lua/errors.h"

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

static void set_bool(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void set_list(lua_State *L, const char *k, const char *const *v)
{
	lua_newtable(L);
	for (int i = 0; v && v[i]; i++) {
		lua_pushstring(L, v[i]);
		lua_seti(L, -2, i + 1);
	}
	lua_setfield(L, -2, k);
}

static void push_config(lua_State *L, const struct worker_args *a)
{
	lua_newtable(L);
	set_str(L, "file", a->file);
	set_str(L, "filter", a->filter);
	set_list(L, "tags", a->tags);
	set_list(L, "exclude_tags", a->exclude_tags);
	set_str(L, "backend", a->backend ? a->backend : "auto");
	set_str(L, "cache_dir", a->cache_dir);
	set_str(L, "tmp_dir", a->tmp_dir);
	set_bool(L, "list_only", a->list_only);
	set_bool(L, "slow", a->slow);
	lua_pushnumber(L, a->timeout);
	lua_setfield(L, -2, "timeout");
	set_bool(L, "timeout_set", a->timeout_set);
	set_int(L, "seed", (lua_Integer)a->seed);
	set_bool(L, "shuffle", a->shuffle);
	set_bool(L, "keep", a->keep);
	set_bool(L, "fail_fast", a->fail_fast);
	set_bool(L, "interactive", a->interactive);
	set_bool(L, "pause_on_failure", a->pause_on_failure);
	set_int(L, "verbose", a->verbose);
	set_int(L, "jobs", a->jobs);
}

/* Last resort when the Lua side cannot report: a file_end with error built in C. */
static void send_file_error(lua_State *L, const char *file, const char *msg)
{
	lua_settop(L, 0);
	lua_newtable(L);
	lua_pushstring(L, "event");
	lua_setfield(L, -2, "k");
	lua_newtable(L);
	set_str(L, "ev", "file_end");
	set_str(L, "file", file);
	set_str(L, "error", msg);
	static const char *const zero[] = {"passed", "failed", "skipped", "todo", "duration_ns"};
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		set_int(L, zero[i], 0);
	lua_setfield(L, -2, "ev");
	pv_chan_send_table(L, 1);
	fprintf(stderr, "provium: %s: %s\n", file, msg);
}

static int load_chunk(lua_State *L, const struct pv_lua_chunk *c)
{
	char name[128];
	snprintf(name, sizeof(name), "=" PV_LUA_CHUNK_PREFIX "%s.lua", c->name);
	if (luaL_loadbuffer(L, c->start, (size_t)(c->end - c->start), name) != LUA_OK)
		return -1;
	return lua_pcall(L, 0, 0, 0) == LUA_OK ? 0 : -1;
}

/* Runs in a protected call: openers, chunks, then provium._main() -> exit status. */
static int setup_and_run(lua_State *L)
{
	for (const struct pv_lua_opener *o = pv_lua_openers; o->name; o++) {
		lua_pushcfunction(L, o->open);
		lua_call(L, 0, 0);
	}
	const struct pv_lua_chunk *c;
	for (c = pv_lua_chunks; c->name; c++)
		if (!strcmp(c->name, "prelude") && load_chunk(L, c) < 0)
			return lua_error(L);
	for (c = pv_lua_chunks; c->name; c++)
		if (strcmp(c->name, "prelude") && load_chunk(L, c) < 0)
			return lua_error(L);
	lua_getglobal(L, "provium");
	lua_getfield(L, -1, "_main");
	lua_call(L, 0, 1);
	return 1;
}

int worker_main(const struct worker_args *a)
{
	/* our own group, so the parent can kill us with everything we started */
	setpgid(0, 0);
	pv_chan_set_fd(a->chan_fd);
	lua_State *L = luaL_newstate();
	if (!L) {
		fprintf(stderr, "provium: %s: cannot create a Lua state\n", a->file);
		return 2;
	}
	luaL_openlibs(L);
	pv_lua_errors_init(L);
	lua_newtable(L);
	push_config(L, a);
	lua_setfield(L, -2, "_config");
	lua_setglobal(L, "provium");

	int status;
	lua_pushcfunction(L, setup_and_run);
	if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
		const char *msg = luaL_tolstring(L, -1, NULL);
		char copy[2048];
		snprintf(copy, sizeof(copy), "internal error: %s", msg);
		send_file_error(L, a->file, copy);
		status = 1;
	} else {
		status = (int)luaL_optinteger(L, -1, 1);
	}
	lua_close(L);
	return status;
}
