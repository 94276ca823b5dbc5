/* chan.c — the worker's end of the SOCK_SEQPACKET channel to the parent (one msgpack map
 * per packet, runner/worker.h) and the Lua <-> msgpack conversion. Lua side:
 * provium._c_chan = {send(tbl) -> true | nil, err; recv() -> tbl | nil (nothing now);
 * fd() -> n}. recv never blocks; waiting is the scheduler's job (prelude.lua). */
#include "lua/chan.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <lauxlib.h>

#include "lua/errors.h"

static int chan_fd = -1;

void pv_chan_set_fd(int fd) { chan_fd = fd; }
int pv_chan_fd(void) { return chan_fd; }

/* true when the table at idx is the json.null sentinel or marked as an array */
static int has_mark(lua_State *L, int idx, const char *field)
{
	int r = 0;
	if (lua_getmetatable(L, idx)) {
		r = lua_getfield(L, -1, field) != LUA_TNIL && lua_toboolean(L, -1);
		lua_pop(L, 2);
	}
	return r;
}

static int is_sequence(lua_State *L, int idx, size_t *len)
{
	size_t n = 0;
	lua_Integer max = 0;
	int seq = 1;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		n++;
		if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2)) {
			lua_Integer k = lua_tointeger(L, -2);
			if (k < 1)
				seq = 0;
			else if (k > max)
				max = k;
		} else {
			seq = 0;
		}
		lua_pop(L, 1);
	}
	*len = n;
	return seq && (size_t)max == n;
}

static void pack_string(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_value(lua_State *L, msgpack_packer *pk, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		msgpack_pack_nil(pk);
		return;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			msgpack_pack_int64(pk, lua_tointeger(L, idx));
		else
			msgpack_pack_double(pk, lua_tonumber(L, idx));
		return;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		pack_string(pk, s, n);
		return;
	}
	case LUA_TTABLE:
		if (has_mark(L, idx, "__jsonnull")) {
			msgpack_pack_nil(pk);
			return;
		}
		if (depth < 32) {
			size_t n;
			luaL_checkstack(L, 4, "msgpack");
			if (is_sequence(L, idx, &n) && (n > 0 || has_mark(L, idx, "__jsonarray"))) {
				msgpack_pack_array(pk, n);
				for (size_t i = 1; i <= n; i++) {
					lua_geti(L, idx, (lua_Integer)i);
					pack_value(L, pk, -1, depth + 1);
					lua_pop(L, 1);
				}
				return;
			}
			msgpack_pack_map(pk, n);
			lua_pushnil(L);
			while (lua_next(L, idx)) {
				if (lua_type(L, -2) == LUA_TSTRING) {
					size_t kn;
					const char *k = lua_tolstring(L, -2, &kn);
					pack_string(pk, k, kn);
				} else {
					pack_value(L, pk, -2, depth + 1);
				}
				pack_value(L, pk, -1, depth + 1);
				lua_pop(L, 1);
			}
			return;
		}
		break;
	default:
		break;
	}
	/* functions, userdata, threads, too deep: their printable form */
	size_t n;
	const char *s = luaL_tolstring(L, idx, &n);
	pack_string(pk, s, n);
	lua_pop(L, 1);
}

void pv_msgpack_pack_lua(lua_State *L, msgpack_packer *pk, int idx)
{
	pack_value(L, pk, idx, 0);
}

void pv_msgpack_push(lua_State *L, const msgpack_object *o)
{
	luaL_checkstack(L, 3, "msgpack");
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		lua_pushboolean(L, o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		lua_pushinteger(L, (lua_Integer)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		lua_pushinteger(L, (lua_Integer)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		lua_pushnumber(L, o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		lua_createtable(L, (int)o->via.array.size, 0);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			pv_msgpack_push(L, &o->via.array.ptr[i]);
			lua_seti(L, -2, i + 1);
		}
		break;
	case MSGPACK_OBJECT_MAP:
		lua_createtable(L, 0, (int)o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			pv_msgpack_push(L, &o->via.map.ptr[i].key);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				continue;
			}
			pv_msgpack_push(L, &o->via.map.ptr[i].val);
			lua_rawset(L, -3);
		}
		break;
	default:
		lua_pushnil(L);
		break;
	}
}

int pv_chan_send_table(lua_State *L, int idx)
{
	if (chan_fd < 0)
		return -EBADF;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pv_msgpack_pack_lua(L, &pk, idx);
	ssize_t r;
	do
		r = send(chan_fd, sb.data, sb.size, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	int err = r < 0 ? -errno : 0;
	msgpack_sbuffer_destroy(&sb);
	return err;
}

static int l_send(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int r = pv_chan_send_table(L, 1);
	if (r < 0) {
		lua_pushnil(L);
		lua_pushstring(L, strerror(-r));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_recv(lua_State *L)
{
	static char buf[65536];
	if (chan_fd < 0)
		return pv_lua_error(L, "closed", "channel", NULL, "no channel to the runner");
	ssize_t n;
	do
		n = recv(chan_fd, buf, sizeof(buf), MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return pv_lua_error(L, "infra", "channel", NULL, "recv: %s", strerror(errno));
	if (n == 0)
		return pv_lua_error(L, "closed", "channel", NULL, "the runner closed the channel");
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	if (msgpack_unpack_next(&u, buf, (size_t)n, &off) != MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&u);
		return pv_lua_error(L, "protocol", "channel", NULL, "undecodable packet from the runner");
	}
	pv_msgpack_push(L, &u.data);
	msgpack_unpacked_destroy(&u);
	return 1;
}

static int l_fd(lua_State *L)
{
	lua_pushinteger(L, chan_fd);
	return 1;
}

int pv_luaopen_chan(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"send", l_send},
		{"recv", l_recv},
		{"fd", l_fd},
		{NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_chan");
	lua_pop(L, 1);
	return 0;
}
