/* sched.c — the C half of the task scheduler (the loop itself is Lua, prelude.lua):
 * monotonic and wall clocks and one poll() over the fds waiting tasks asked for.
 * Registered as provium._c_sched = {now, unix_ns, poll, busy_hook}. Never blocks longer than the
 * timeout it is given. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/errors.h"

static int sched_now(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	return 1;
}

static int sched_now_ns(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return 1;
}

static int sched_unix_ns(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return 1;
}

static short mode_events(const char *m)
{
	short ev = 0;
	if (strchr(m, 'r'))
		ev |= POLLIN;
	if (strchr(m, 'w'))
		ev |= POLLOUT;
	return ev;
}

/* poll(fds, modes, timeout_s) -> array of booleans (ready, including error/hangup),
 * same indices as fds. timeout_s < 0 waits forever. EINTR counts as "nothing ready". */
static int sched_poll(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	double timeout = luaL_checknumber(L, 3);
	lua_Integer n = luaL_len(L, 1);
	struct pollfd stackfds[64], *fds = stackfds;
	if (n > 64) {
		fds = calloc((size_t)n, sizeof(*fds));
		if (!fds)
			return pv_lua_error(L, "infra", "sched", NULL, "out of memory");
	}
	for (lua_Integer i = 0; i < n; i++) {
		lua_geti(L, 1, i + 1);
		lua_geti(L, 2, i + 1);
		fds[i].fd = (int)lua_tointeger(L, -2);
		fds[i].events = mode_events(luaL_optstring(L, -1, "r"));
		fds[i].revents = 0;
		lua_pop(L, 2);
	}
	int ms = timeout < 0 ? -1 : (int)(timeout * 1000.0 + 0.999);
	int r = poll(fds, (nfds_t)n, ms);
	if (r < 0 && errno != EINTR) {
		int e = errno;
		if (fds != stackfds)
			free(fds);
		return pv_lua_error(L, "infra", "poll", NULL, "%s", strerror(e));
	}
	lua_createtable(L, (int)n, 0);
	for (lua_Integer i = 0; i < n; i++) {
		lua_pushboolean(L, r > 0 && fds[i].revents != 0);
		lua_seti(L, -2, i + 1);
	}
	if (fds != stackfds)
		free(fds);
	return 1;
}

/* A test task busy in Lua past its deadline (provium._sched.test_deadline, else
 * .file_deadline) is stopped here: the count hook yields it (so no pcall in the loop can
 * catch anything) after setting _sched._busy_stopped; the scheduler then leaves the task
 * blocked and reports the timeout at its line. Where yielding is impossible (inside a
 * C call such as a table.sort comparator) it raises instead. */
static void busy_hook(lua_State *L, lua_Debug *ar)
{
	if (ar->event != LUA_HOOKCOUNT)
		return;
	int top = lua_gettop(L);
	double deadline = 0;
	if (lua_getglobal(L, "provium") == LUA_TTABLE &&
	    lua_getfield(L, -1, "_sched") == LUA_TTABLE) {
		if (lua_getfield(L, -1, "test_deadline") == LUA_TNUMBER)
			deadline = lua_tonumber(L, -1);
		lua_pop(L, 1);
		if (deadline == 0 && lua_getfield(L, -1, "file_deadline") == LUA_TNUMBER)
			deadline = lua_tonumber(L, -1);
		if (deadline == 0)
			lua_pop(L, 1);
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (deadline == 0 || now <= deadline + 0.05) {
		lua_settop(L, top);
		return;
	}
	lua_settop(L, top);
	if (lua_isyieldable(L)) {
		/* the line now: once yielded, the frame reports the instruction before */
		int line = lua_getinfo(L, "l", ar) ? ar->currentline : -1;
		if (lua_getglobal(L, "provium") == LUA_TTABLE &&
		    lua_getfield(L, -1, "_sched") == LUA_TTABLE) {
			lua_pushinteger(L, line);
			lua_setfield(L, -2, "_busy_stopped");
		}
		lua_settop(L, top);
		lua_yield(L, 0);
		return;
	}
	luaL_error(L, "timed out: busy in Lua without yielding for longer than its timeout "
		      "(a loop that never calls a blocking provium function?)");
}

/* busy_hook(co): installs busy_hook on the coroutine co, every million instructions */
static int sched_busy_hook(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);
	luaL_argcheck(L, co != NULL, 1, "a coroutine");
	lua_sethook(co, busy_hook, LUA_MASKCOUNT, 1000000);
	return 0;
}

int pv_luaopen_sched(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"busy_hook", sched_busy_hook},
		{"now", sched_now},
		{"now_ns", sched_now_ns},
		{"unix_ns", sched_unix_ns},
		{"poll", sched_poll},
		{NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_sched");
	lua_pop(L, 1);
	return 0;
}
