/* sched.c — the C half of the task scheduler (the loop itself is Lua, prelude.lua):
 * monotonic and wall clocks and one poll() over the fds waiting tasks asked for.
 * Registered as provium._c_sched = {now, unix_ns, poll}. Never blocks longer than the
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

int pv_luaopen_sched(lua_State *L)
{
	static const luaL_Reg fns[] = {
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
