/* embed.h — the Lua code built into the binary, as the worker (lua/runfile.c) loads it.
 *
 * The Makefile generates build/obj/lua_embed_list.c (by lua/embed-list.sh) holding:
 *  - pv_lua_chunks: every lua/<name>.lua, embedded as a chunk named "=[provium]/<name>.lua";
 *  - pv_lua_openers: every function defined in lua/<x>.c by a line starting with
 *    `int pv_luaopen_<name>(lua_State *L)`.
 * Worker start-up order: the `provium` global table exists (empty but for _config);
 * every opener is called in alphabetical order (each adds its C functions, usually into
 * `provium` or a private table such as provium._c_<name>; it must not call Lua chunks);
 * then prelude.lua runs, then the other chunks alphabetically. Chunks run with no
 * arguments and should only define things. */
#ifndef PROVIUM_LUA_EMBED_H
#define PROVIUM_LUA_EMBED_H

#include <lua.h>

struct pv_lua_chunk {
	const char *name;   /* "prelude" for lua/prelude.lua */
	const char *start, *end;
};

struct pv_lua_opener {
	const char *name;   /* "json" for pv_luaopen_json */
	int (*open)(lua_State *L);
};

extern const struct pv_lua_chunk pv_lua_chunks[];    /* sorted by name, {0} terminated */
extern const struct pv_lua_opener pv_lua_openers[];  /* sorted by name, {0} terminated */

/* Chunk names in Lua debug info start with this, so test failures can skip library
 * frames and report the caller's file:line. */
#define PV_LUA_CHUNK_PREFIX "[provium]/"

#endif
