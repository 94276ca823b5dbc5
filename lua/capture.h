/* capture.h — the Capture userdata's C handle (lua/capture.c), for lua/nic.c. */
#ifndef PROVIUM_LUA_CAPTURE_H
#define PROVIUM_LUA_CAPTURE_H

#include <lua.h>

struct np_capture;
/* The capture of the Capture userdata at index i (raises when closed). */
struct np_capture *pv_lua_check_capture(lua_State *L, int i);

#endif
