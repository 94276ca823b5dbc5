/* errors.h — raising provium errors from C (API.md: a Lua error carrying a table
 * {code=, message=, op=, vm=[, errno=, errname=]} whose __tostring prints
 * "provium: <op> on <vm>: <message>"). code is one of: timeout, guest, closed,
 * unsupported, invalid, infra, protocol. */
#ifndef PROVIUM_LUA_ERRORS_H
#define PROVIUM_LUA_ERRORS_H

#include <lua.h>

/* Pushes a new error table (does not raise). vm may be NULL. */
void pv_lua_pusherror(lua_State *L, const char *code, const char *op, const char *vm,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Raises it; never returns. */
int pv_lua_error(lua_State *L, const char *code, const char *op, const char *vm,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6), noreturn));
/* Raises a `guest` error with errno/errname set. */
int pv_lua_guest_error(lua_State *L, const char *op, const char *vm, int err,
		       const char *message) __attribute__((noreturn));
/* Registers the error metatable (call once per state). */
void pv_lua_errors_init(lua_State *L);

#endif
