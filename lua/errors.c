/* errors.c — provium error tables for Lua (see errors.h). */
#include "lua/errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#define ERROR_MT "provium.Error"

static int error_tostring(lua_State *L)
{
	lua_getfield(L, 1, "op");
	lua_getfield(L, 1, "vm");
	lua_getfield(L, 1, "message");
	const char *op = lua_tostring(L, -3), *vm = lua_tostring(L, -2), *msg = lua_tostring(L, -1);
	if (op && vm)
		lua_pushfstring(L, "provium: %s on %s: %s", op, vm, msg ? msg : "?");
	else if (op)
		lua_pushfstring(L, "provium: %s: %s", op, msg ? msg : "?");
	else
		lua_pushfstring(L, "provium: %s", msg ? msg : "?");
	return 1;
}

void pv_lua_errors_init(lua_State *L)
{
	if (luaL_newmetatable(L, ERROR_MT)) {
		lua_pushcfunction(L, error_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushstring(L, "provium.Error");
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
}

static void push_table(lua_State *L, const char *code, const char *op, const char *vm,
		       const char *msg)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, code);
	lua_setfield(L, -2, "code");
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	if (op) {
		lua_pushstring(L, op);
		lua_setfield(L, -2, "op");
	}
	if (vm) {
		lua_pushstring(L, vm);
		lua_setfield(L, -2, "vm");
	}
	pv_lua_errors_init(L);
	luaL_setmetatable(L, ERROR_MT);
}

static void vpush(lua_State *L, const char *code, const char *op, const char *vm,
		  const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	push_table(L, code, op, vm, msg);
}

void pv_lua_pusherror(lua_State *L, const char *code, const char *op, const char *vm,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vpush(L, code, op, vm, fmt, ap);
	va_end(ap);
}

int pv_lua_error(lua_State *L, const char *code, const char *op, const char *vm,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vpush(L, code, op, vm, fmt, ap);
	va_end(ap);
	lua_error(L);
	__builtin_unreachable();
}

int pv_lua_guest_error(lua_State *L, const char *op, const char *vm, int err,
		       const char *message)
{
	push_table(L, "guest", op, vm, message && *message ? message : strerror(err));
	lua_pushinteger(L, err);
	lua_setfield(L, -2, "errno");
	const char *name = strerrorname_np(err);
	lua_pushstring(L, name ? name : "EUNKNOWN");
	lua_setfield(L, -2, "errname");
	lua_error(L);
	__builtin_unreachable();
}
