/* capture.h — the Capture userdata's C handle (lua/capture.c), for lua/nic.c. */
#ifndef PROVIUM_LUA_CAPTURE_H
#define PROVIUM_LUA_CAPTURE_H

#include <lua.h>

struct np_capture;
/* The capture of the Capture userdata at index i (raises when closed). */
struct np_capture *pv_lua_check_capture(lua_State *L, int i);

/* lua/nic.c: the worker's network event loop (started on first use; NULL on
 * failure with pv_error set), and running fn(arg) on it, waiting for it. */
struct evloop;
struct evloop *pv_lua_net_loop(void);
void pv_lua_net_loop_sync(void (*fn)(void *), void *arg);

#endif
