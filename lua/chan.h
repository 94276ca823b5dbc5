/* chan.h — the worker end of the worker<->parent channel (runner/worker.h) and the
 * msgpack <-> Lua value conversion it uses (also usable by other lua/ code). */
#ifndef PROVIUM_LUA_CHAN_H
#define PROVIUM_LUA_CHAN_H

#include <lua.h>
#include <msgpack.h>

/* Sets the channel fd the Lua functions provium._c_chan.send/recv use (-1: none). */
void pv_chan_set_fd(int fd);
int pv_chan_fd(void);

/* Packs the Lua value at idx. Tables that are 1..n sequences (or carry json.array's
 * mark) become arrays, other tables maps; json.null becomes nil; values msgpack cannot
 * hold (functions, userdata, deeper than 32 levels) become their tostring(). Never raises
 * except on out-of-memory. */
void pv_msgpack_pack_lua(lua_State *L, msgpack_packer *pk, int idx);
/* Pushes the Lua value for obj (maps/arrays become tables, str/bin strings). */
void pv_msgpack_push(lua_State *L, const msgpack_object *obj);
/* Sends the Lua table at idx as one packet; returns 0 or -errno. */
int pv_chan_send_table(lua_State *L, int idx);

#endif
