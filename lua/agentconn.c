/* agentconn.c — one host–agent connection (see agentconn.h): non-blocking framing,
 * the hello handshake, and the Lua binding that stores replies and stream data by id
 * for the blocking loops in lua/vm.lua. */
#include "lua/agentconn.h"
#include "lua/errors.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

struct agentconn {
	int fd;
	char *vm;
	struct pv_frame_reader rd;
	char *out;                 /* queued bytes not yet written */
	size_t out_off, out_len, out_cap;
	uint64_t next_id;
	bool ready, closed, proto_err;
	char err[256];
};

static struct agentconn *conn_alloc(int fd, const char *vmname)
{
	struct agentconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->vm = strdup(vmname ? vmname : "?");
	pv_frame_reader_init(&c->rd, 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return c;
}

int agentconn_adopt(int fd, const char *vmname, struct agentconn **out)
{
	if (!(*out = conn_alloc(fd, vmname)))
		return pv_error(ENOMEM, "agent connection: out of memory");
	(*out)->ready = true;
	return 0;
}

int agentconn_new(int fd, const char *vmname, struct agentconn **out)
{
	struct agentconn *c = conn_alloc(fd, vmname);
	if (!c)
		return pv_error(ENOMEM, "agent connection: out of memory");
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	static const char *const features[] = {"streams"};
	pv_enc_hello(&b, PV_ROLE_HOST, features, 1);
	pv_fbuf_finish(&b);
	int r = agentconn_queue(c, b.sb.data, b.sb.size);
	pv_fbuf_destroy(&b);
	if (r < 0 && r != -EPIPE) {
		agentconn_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void agentconn_free(struct agentconn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	pv_frame_reader_free(&c->rd);
	free(c->out);
	free(c->vm);
	free(c);
}

int agentconn_fd(const struct agentconn *c) { return c->fd; }
bool agentconn_ready(const struct agentconn *c) { return c->ready; }
bool agentconn_closed(const struct agentconn *c) { return c->closed; }
bool agentconn_protocol_error(const struct agentconn *c) { return c->proto_err; }
const char *agentconn_error(const struct agentconn *c) { return c->closed ? c->err : NULL; }
uint64_t agentconn_next_id(struct agentconn *c) { return ++c->next_id; }
bool agentconn_want_write(const struct agentconn *c) { return c->out_len > 0; }

static int conn_fail(struct agentconn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int conn_fail(struct agentconn *c, int err, const char *fmt, ...)
{
	if (!c->closed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
		c->closed = true;
	}
	return pv_error(err, "%s", c->err);
}

int agentconn_flush(struct agentconn *c)
{
	while (c->out_len) {
		if (c->closed)
			return pv_error(EPIPE, "%s", c->err);
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			if (errno == EPIPE || errno == ECONNRESET)
				return conn_fail(c, errno, "the agent closed the connection");
			return conn_fail(c, errno, "the agent connection broke: %s", strerror(errno));
		}
		c->out_off += (size_t)n;
		c->out_len -= (size_t)n;
	}
	c->out_off = 0;
	return 0;
}

int agentconn_queue(struct agentconn *c, const void *frame, size_t len)
{
	if (c->closed)
		return pv_error(EPIPE, "%s", c->err);
	if (c->out_off && c->out_off + c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	if (c->out_off + c->out_len + len > c->out_cap) {
		size_t cap = PV_MAX(c->out_cap * 2, c->out_len + len + 4096);
		char *p = realloc(c->out, cap);
		if (!p)
			return pv_error(ENOMEM, "agent connection: out of memory");
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_off + c->out_len, frame, len);
	c->out_len += len;
	int r = agentconn_flush(c);
	return r < 0 ? r : 0;
}

static int handle_hello(struct agentconn *c, const struct pv_frame *f)
{
	char err[200];
	if (pv_hello_check(f, PV_ROLE_AGENT, err, sizeof(err)) < 0) {
		c->proto_err = true;
		return conn_fail(c, EPROTO, "agent handshake failed: %s", err);
	}
	c->ready = true;
	return 0;
}

int agentconn_pump(struct agentconn *c, agentconn_frame_cb cb, void *ud)
{
	if (c->closed)
		return pv_error(EPIPE, "%s", c->err);
	int r = agentconn_flush(c);
	if (r < 0)
		return r;
	int frames = 0;
	bool eof = false;
	for (int rounds = 0; rounds < 64 && !eof; rounds++) {
		size_t room;
		void *p = pv_frame_reader_reserve(&c->rd, 65536, &room);
		if (!p)
			return conn_fail(c, ENOMEM, "agent connection: out of memory");
		ssize_t n = read(c->fd, p, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			eof = true;
			if (errno == ECONNRESET)
				conn_fail(c, errno, "the agent closed the connection");
			else
				conn_fail(c, errno, "the agent connection broke: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			eof = true;
			conn_fail(c, EPIPE, "the agent closed the connection");
			break;
		}
		pv_frame_reader_commit(&c->rd, (size_t)n);
		if ((size_t)n < room)
			break;
	}
	struct pv_frame f;
	int rc;
	while ((rc = pv_frame_reader_next(&c->rd, &f)) != 0) {
		if (rc == -EBADMSG)
			continue; /* one bad frame; the stream stays usable */
		if (rc < 0) {
			c->closed = false; /* report the framing error rather than the EOF */
			return conn_fail(c, EPROTO, "bad frame from the agent: %s", c->rd.err);
		}
		if (f.kind == PV_FRAME_HELLO) {
			int hr = handle_hello(c, &f);
			pv_frame_destroy(&f);
			if (hr < 0)
				return hr;
			continue;
		}
		/* id 0 error replies: the agent's complaint about the connection itself */
		if (f.kind == PV_FRAME_REPLY && f.has_id && f.id == 0 && !f.ok) {
			if (!strcmp(f.code, PV_ERRCODE_PROTOCOL) && f.err == EPROTO)
				c->proto_err = true;
			char msg[200];
			snprintf(msg, sizeof(msg), "%.*s", (int)PV_MIN(f.message_len, 190), f.message ? f.message : "");
			pv_frame_destroy(&f);
			if (c->proto_err || !c->ready) {
				c->closed = false;
				return conn_fail(c, EPROTO, "the agent refused the connection: %s", msg);
			}
			pv_debug("agent on %s: %s", c->vm, msg);
			continue;
		}
		if (f.kind == PV_FRAME_REPLY || f.kind == PV_FRAME_STREAM) {
			frames++;
			if (cb)
				cb(ud, &f);
		}
		pv_frame_destroy(&f);
	}
	if (c->closed)
		return frames ? frames : pv_error(EPIPE, "%s", c->err);
	return frames;
}

/* ---- Lua binding ---- */

#define CONN_MT "provium.AgentConn"

struct lconn {
	struct agentconn *c;
	char vm[64];
};

static struct lconn *check_conn(lua_State *L, int i)
{
	return luaL_checkudata(L, i, CONN_MT);
}

static struct agentconn *live_conn(lua_State *L, int i, const char *op)
{
	struct lconn *lc = check_conn(L, i);
	if (!lc->c)
		pv_lua_error(L, "closed", op, lc->vm, "the agent connection is closed");
	return lc->c;
}

/* msgpack object -> Lua value (str and bin both become strings). */
static void push_obj(lua_State *L, const msgpack_object *o, int depth)
{
	luaL_checkstack(L, 4, "msgpack nesting");
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN: lua_pushboolean(L, o->via.boolean); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: lua_pushinteger(L, (lua_Integer)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: lua_pushinteger(L, (lua_Integer)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: lua_pushnumber(L, o->via.f64); break;
	case MSGPACK_OBJECT_STR: lua_pushlstring(L, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN: lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size); break;
	case MSGPACK_OBJECT_ARRAY:
		lua_createtable(L, (int)o->via.array.size, 0);
		for (uint32_t i = 0; i < o->via.array.size && depth < 32; i++) {
			push_obj(L, &o->via.array.ptr[i], depth + 1);
			lua_seti(L, -2, i + 1);
		}
		break;
	case MSGPACK_OBJECT_MAP:
		lua_createtable(L, 0, (int)o->via.map.size);
		for (uint32_t i = 0; i < o->via.map.size && depth < 32; i++) {
			push_obj(L, &o->via.map.ptr[i].key, depth + 1);
			push_obj(L, &o->via.map.ptr[i].val, depth + 1);
			if (lua_isnil(L, -2))
				lua_pop(L, 2);
			else
				lua_settable(L, -3);
		}
		break;
	default: lua_pushnil(L); break;
	}
}

/* Lua value -> msgpack. Tables with [1] are arrays, others maps (an empty table is a
 * map: every args/env table is one). */
static void pack_value(lua_State *L, int idx, struct pv_fbuf *b, int depth)
{
	idx = lua_absindex(L, idx);
	if (depth > PV_PROTO_MAX_DEPTH)
		luaL_error(L, "agent request: value nested too deeply");
	switch (lua_type(L, idx)) {
	case LUA_TNIL: pv_pack_nil(b); break;
	case LUA_TBOOLEAN: pv_pack_bool(b, lua_toboolean(L, idx)); break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			pv_pack_int(b, lua_tointeger(L, idx));
		else
			pv_pack_double(b, lua_tonumber(L, idx));
		break;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		pv_pack_strn(b, s, n);
		break;
	}
	case LUA_TTABLE: {
		lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
		if (n > 0) {
			pv_pack_array(b, (uint32_t)n);
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				pack_value(L, -1, b, depth + 1);
				lua_pop(L, 1);
			}
			break;
		}
		uint32_t cnt = 0;
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			cnt++;
			lua_pop(L, 1);
		}
		pv_pack_map(b, cnt);
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			lua_pushvalue(L, -2);
			const char *k = lua_tostring(L, -1); /* converts numbers to keys */
			pv_pack_str(b, k ? k : "?");
			lua_pop(L, 1);
			pack_value(L, -1, b, depth + 1);
			lua_pop(L, 1);
		}
		break;
	}
	default:
		luaL_error(L, "agent request: cannot send a %s", luaL_typename(L, idx));
	}
}

static void queue_frame(lua_State *L, struct lconn *lc, struct pv_fbuf *b, const char *op)
{
	if (pv_fbuf_finish(b) < 0) {
		pv_fbuf_destroy(b);
		pv_lua_error(L, "invalid", op, lc->vm, "request too large (over %d bytes)",
			     PV_PROTO_MAX_FRAME);
	}
	int r = agentconn_queue(lc->c, b->sb.data, b->sb.size);
	pv_fbuf_destroy(b);
	if (r < 0)
		pv_lua_error(L, "closed", op, lc->vm, "%s", pv_errmsg());
}

/* What the host keeps per connection (uservalues of the AgentConn userdata):
 *   [1] replies by id, [2] streams by id ({name = {chunk, ..., eof=bool}, [0] = the
 *   number of names}), [3] the live ids: id -> the LIVE_* bits of its op. A reply is
 *   kept only for a live id; stream frames only for a live id whose op streams
 *   (LIVE_STREAMS), at most MAX_STREAM_NAMES names. An id stops being live at its
 *   reply, or at c:forget() for ops that stream after their reply (LIVE_AFTER_REPLY:
 *   spawn, tail, tail_fd). Any other frame (an id never sent, already answered or
 *   forgotten) is dropped: a misbehaving agent cannot make the host keep anything
 *   it did not ask for (docs/security.md). */
#define LIVE_STREAMS 1
#define LIVE_AFTER_REPLY 2
#define MAX_STREAM_NAMES 8   /* distinct stream names kept per id */

static int live_kind(const char *op)
{
	if (!strcmp(op, PV_OP_SPAWN) || !strcmp(op, PV_OP_TAIL) || !strcmp(op, PV_OP_TAIL_FD))
		return LIVE_STREAMS | LIVE_AFTER_REPLY;
	if (!strcmp(op, PV_OP_EXEC) || !strcmp(op, PV_OP_READ_FILE))
		return LIVE_STREAMS;
	return 0;
}

/* c:send(op, args) -> id */
static int l_send(lua_State *L)
{
	struct agentconn *c = live_conn(L, 1, "send");
	struct lconn *lc = check_conn(L, 1);
	const char *op = luaL_checkstring(L, 2);
	uint64_t id = agentconn_next_id(c);
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_request(&b, id, op);
	if (lua_istable(L, 3))
		pack_value(L, 3, &b, 1);
	else
		pv_pack_map(&b, 0);
	queue_frame(L, lc, &b, op);
	lua_getiuservalue(L, 1, 3);
	lua_pushinteger(L, live_kind(op));
	lua_rawseti(L, -2, (lua_Integer)id);
	lua_pop(L, 1);
	lua_pushinteger(L, (lua_Integer)id);
	return 1;
}

/* c:send_stream(id, stream, data) */
static int l_send_stream(lua_State *L)
{
	struct agentconn *c = live_conn(L, 1, "send");
	(void)c;
	struct lconn *lc = check_conn(L, 1);
	uint64_t id = (uint64_t)luaL_checkinteger(L, 2);
	const char *stream = luaL_checkstring(L, 3);
	size_t n;
	const char *data = luaL_checklstring(L, 4, &n);
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_stream(&b, id, stream, data, n);
	queue_frame(L, lc, &b, "write_file");
	return 0;
}

static int l_send_eof(lua_State *L)
{
	live_conn(L, 1, "send");
	struct lconn *lc = check_conn(L, 1);
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_eof(&b, (uint64_t)luaL_checkinteger(L, 2), luaL_checkstring(L, 3));
	queue_frame(L, lc, &b, "write_file");
	return 0;
}

/* lua_pcall'ed: the result map (lightuserdata) as a Lua table. */
static int push_result(lua_State *L)
{
	const msgpack_object *o = lua_touserdata(L, 1);
	if (o)
		push_obj(L, o, 0);
	else
		lua_newtable(L);
	return 1;
}

/* The reply table for f (stack: ..., replies, streams, live); a result Lua cannot
 * hold (a NaN or nil key, say) makes it a `protocol` error reply for that request. */
static void push_reply(lua_State *L, const struct pv_frame *f)
{
	lua_createtable(L, 0, 6);
	if (f->ok) {
		lua_pushcfunction(L, push_result);
		lua_pushlightuserdata(L, (void *)f->result);
		if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -3, "ok");
			lua_setfield(L, -2, "result");
			return;
		}
		const char *why = lua_tostring(L, -1);
		lua_pushfstring(L, "bad reply from the agent: %s", why ? why : "not a value");
		lua_setfield(L, -3, "message");
		lua_pop(L, 1);
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "ok");
		lua_pushinteger(L, EPROTO);
		lua_setfield(L, -2, "errno");
		lua_pushstring(L, pv_errno_name(EPROTO));
		lua_setfield(L, -2, "errname");
		lua_pushstring(L, PV_ERRCODE_PROTOCOL);
		lua_setfield(L, -2, "code");
		return;
	}
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "ok");
	lua_pushinteger(L, f->err);
	lua_setfield(L, -2, "errno");
	lua_pushstring(L, pv_errno_name(f->err));
	lua_setfield(L, -2, "errname");
	lua_pushlstring(L, f->message ? f->message : "", f->message_len);
	lua_setfield(L, -2, "message");
	if (f->code[0]) {
		lua_pushstring(L, f->code);
		lua_setfield(L, -2, "code");
	}
}

/* lua_pcall'ed by lua_frame_cb: args frame (lightuserdata), replies, streams, live. */
static int dispatch(lua_State *L)
{
	const struct pv_frame *f = lua_touserdata(L, 1);
	lua_Integer id = (lua_Integer)f->id;
	if (lua_rawgeti(L, 4, id) != LUA_TNUMBER) {
		lua_pushboolean(L, 0); /* not live: dropped */
		return 1;
	}
	lua_Integer kind = lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (f->kind == PV_FRAME_REPLY) {
		push_reply(L, f);
		lua_rawseti(L, 2, id);
		if (!(kind & LIVE_AFTER_REPLY)) {
			lua_pushnil(L);
			lua_rawseti(L, 4, id);
		}
		lua_pushboolean(L, 1);
		return 1;
	}
	if (!(kind & LIVE_STREAMS)) {
		lua_pushboolean(L, 0); /* this op does not stream */
		return 1;
	}
	/* stream frame: streams[id][name] = {chunk, chunk, ..., eof=bool} */
	if (lua_rawgeti(L, 3, id) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_rawseti(L, 3, id);
	}
	int per_id = lua_gettop(L);
	if (lua_getfield(L, per_id, f->stream) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_rawgeti(L, per_id, 0);
		lua_Integer names = lua_tointeger(L, -1);
		lua_pop(L, 1);
		if (names >= MAX_STREAM_NAMES) {
			lua_pushboolean(L, 0);
			return 1;
		}
		lua_pushinteger(L, names + 1);
		lua_rawseti(L, per_id, 0);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, per_id, f->stream);
	}
	if (f->eof) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "eof");
	} else if (f->data_len) {
		lua_pushlstring(L, (const char *)f->data, f->data_len);
		lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* agentconn_pump's callback (stack: ..., replies, streams, live). Never raises:
 * agentconn_pump must get to free each frame. */
static void lua_frame_cb(void *ud, const struct pv_frame *f)
{
	lua_State *L = ud;
	if (!f->has_id)
		return;
	lua_pushcfunction(L, dispatch);
	lua_pushlightuserdata(L, (void *)f);
	lua_pushvalue(L, -5);
	lua_pushvalue(L, -5);
	lua_pushvalue(L, -5);
	if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
		pv_debug("agent frame for id %llu dropped: %s", (unsigned long long)f->id,
			 lua_tostring(L, -1));
	} else if (!lua_toboolean(L, -1)) {
		pv_debug("agent frame for id %llu that the host does not wait for: dropped",
			 (unsigned long long)f->id);
	}
	lua_pop(L, 1);
}

/* c:pump() -> number of frames handled; raises closed/protocol when the connection is gone */
static int l_pump(lua_State *L)
{
	struct agentconn *c = live_conn(L, 1, "agent");
	struct lconn *lc = check_conn(L, 1);
	lua_settop(L, 1);
	lua_getiuservalue(L, 1, 1);
	lua_getiuservalue(L, 1, 2);
	lua_getiuservalue(L, 1, 3);
	int n = agentconn_pump(c, lua_frame_cb, L);
	if (n < 0) {
		if (agentconn_protocol_error(c))
			pv_lua_error(L, "protocol", "agent", lc->vm, "%s", agentconn_error(c));
		pv_lua_error(L, "closed", "agent", lc->vm, "%s", agentconn_error(c) ? agentconn_error(c) : pv_errmsg());
	}
	lua_pushinteger(L, n);
	return 1;
}

/* c:reply(id) -> the reply table (removed), or nil */
static int l_reply(lua_State *L)
{
	check_conn(L, 1);
	lua_Integer id = luaL_checkinteger(L, 2);
	lua_getiuservalue(L, 1, 1);
	if (lua_rawgeti(L, -1, id) == LUA_TNIL)
		return 1;
	lua_pushnil(L);
	lua_rawseti(L, -3, id);
	return 1;
}

/* c:stream(id, name) -> data (everything buffered, removed), eof */
static int l_stream(lua_State *L)
{
	check_conn(L, 1);
	lua_Integer id = luaL_checkinteger(L, 2);
	const char *name = luaL_checkstring(L, 3);
	lua_getiuservalue(L, 1, 2);
	if (lua_rawgeti(L, -1, id) != LUA_TTABLE || lua_getfield(L, -1, name) != LUA_TTABLE) {
		lua_pushliteral(L, "");
		lua_pushboolean(L, 0);
		return 2;
	}
	int t = lua_gettop(L);
	luaL_Buffer buf;
	luaL_buffinit(L, &buf);
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		luaL_addvalue(&buf);
	}
	luaL_pushresult(&buf);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_pushnil(L);
		lua_rawseti(L, t, i);
	}
	lua_getfield(L, t, "eof");
	lua_pushboolean(L, lua_toboolean(L, -1));
	lua_remove(L, -2);
	return 2;
}

/* c:forget(id): drop everything held for id; later frames for it are dropped */
static int l_forget(lua_State *L)
{
	check_conn(L, 1);
	lua_Integer id = luaL_checkinteger(L, 2);
	for (int i = 1; i <= 3; i++) {
		lua_getiuservalue(L, 1, i);
		lua_pushnil(L);
		lua_rawseti(L, -2, id);
		lua_pop(L, 1);
	}
	return 0;
}

static int l_fd(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	lua_pushinteger(L, lc->c ? agentconn_fd(lc->c) : -1);
	return 1;
}

static int l_ready(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	lua_pushboolean(L, lc->c && agentconn_ready(lc->c));
	return 1;
}

static int l_want_write(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	lua_pushboolean(L, lc->c && agentconn_want_write(lc->c));
	return 1;
}

/* c:closed() -> nil while usable, else the reason */
static int l_closed(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	if (!lc->c)
		lua_pushliteral(L, "the agent connection is closed");
	else if (agentconn_closed(lc->c))
		lua_pushstring(L, agentconn_error(lc->c));
	else
		lua_pushnil(L);
	return 1;
}

static int l_close(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	agentconn_free(lc->c);
	lc->c = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct lconn *lc = check_conn(L, 1);
	lua_pushfstring(L, "AgentConn(%s, %s)", lc->vm,
			!lc->c ? "closed" : agentconn_closed(lc->c) ? "broken" :
			agentconn_ready(lc->c) ? "ready" : "connecting");
	return 1;
}

/* provium._c_agent.connect(fd, vmname [, adopted]) -> AgentConn (takes ownership of
 * fd); `adopted`: the handshake was done before (agentconn_adopt). */
static int l_connect(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	const char *vm = luaL_optstring(L, 2, "?");
	struct lconn *lc = lua_newuserdatauv(L, sizeof(*lc), 3);
	lc->c = NULL;
	snprintf(lc->vm, sizeof(lc->vm), "%s", vm);
	luaL_setmetatable(L, CONN_MT);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 2);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 3);
	int err = lua_toboolean(L, 3) ? agentconn_adopt(fd, vm, &lc->c) : agentconn_new(fd, vm, &lc->c);
	if (err < 0) {
		close(fd);
		pv_lua_error(L, "infra", "connect", vm, "%s", pv_errmsg());
	}
	return 1;
}

int pv_luaopen_agentconn(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"send", l_send}, {"send_stream", l_send_stream}, {"send_eof", l_send_eof},
		{"pump", l_pump}, {"reply", l_reply}, {"stream", l_stream}, {"forget", l_forget},
		{"fd", l_fd}, {"ready", l_ready}, {"want_write", l_want_write},
		{"closed", l_closed}, {"close", l_close}, {NULL, NULL},
	};
	if (luaL_newmetatable(L, CONN_MT)) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		lua_newtable(L);
		lua_pushcfunction(L, l_connect);
		lua_setfield(L, -2, "connect");
		lua_pushinteger(L, PROTOCOL_VERSION);
		lua_setfield(L, -2, "PROTOCOL_VERSION");
		lua_setfield(L, -2, "_c_agent");
	}
	lua_pop(L, 1);
	return 0;
}
