/* opts.h — the one argument and option checker of the Lua API (docs/options.md).
 *
 * A spec is a string of space-separated `name:kind` words, the same from C and Lua:
 * "cwd:string env:table stdin:string timeout:secs user:user". Kinds: any, string,
 * bool, table, function, number (finite), int, uint (>= 0), posint (>= 1), secs and
 * nonneg (finite, >= 0), rate (0..1), byte (0..255), user (a name or a uid), and
 * `a|b|c` (one of these strings). Integers may be given as integral floats (256.0).
 *
 * Every failure raises `invalid` with op and vm set (vm may be NULL) and, for an
 * option, `option` = its key. */
#ifndef PROVIUM_LUA_OPTS_H
#define PROVIUM_LUA_OPTS_H

#include <lua.h>

/* Checks the opts argument at index idx of a call to op: none/nil is fine; anything
 * else must be a table whose keys are all in spec and whose values fit their kinds.
 * An unknown key names the key, op and the keys it takes, and the closest key when
 * it is a near miss ("did you mean"). The messages call it "opts" ("opts.count must
 * be ..."; provium._opts can name other tables: "profile.memory must be ..."). */
void pv_opts_check(lua_State *L, int idx, const char *op, const char *vm, const char *spec);

/* Checks the value at idx (an argument called `what`, e.g. "seconds") against a kind;
 * nil only when nil_ok. */
void pv_arg_check(lua_State *L, int idx, const char *kind, const char *op, const char *vm,
		  const char *what, int nil_ok);

/* Raises the error for a method called with a dot: `recv.method(...)` passes no
 * receiver. op is "recv:method"; idx the value that came instead (may be none);
 * kind names the receiver's type ("VM", "Disk"). */
int pv_self_error(lua_State *L, const char *op, int idx, const char *kind)
	__attribute__((noreturn));

#endif
