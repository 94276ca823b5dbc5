/* test_hostile_agent.c — a misbehaving agent against the host's connection
 * (lua/agentconn.c, issue 11 finding 4, docs/security.md), through the Lua binding
 * the VM API uses: a fake agent on a socketpair sends frames that decode fine but
 * mean harm.
 *  - a reply whose result map has a NaN key: the caller gets a provium `protocol`
 *    error for that request, the connection stays usable, nothing leaks;
 *  - reply and stream frames for ids the host never sent (or already forgot) are
 *    dropped, so they cannot grow the Lua heap; so are stream frames for a live
 *    request whose op does not stream;
 *  - a live id cannot collect an unbounded number of stream names.
 * Memory is measured (heap_meter.h / collectgarbage), never time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/proto.h"
#include "lua/errors.h"
#include "tests/unit/heap_meter.h"
#include "vmm/util.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int pv_luaopen_agentconn(lua_State *L);

struct fx {
	lua_State *L;
	int agent;      /* the fake agent's end */
};

static void lua_ok(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("lua: %s\n  in: %s", luaL_tolstring(L, -1, NULL), code);
}

static void send_frame(struct fx *x, struct pv_fbuf *b)
{
	assert_int_equal(pv_fbuf_finish(b), 0);
	assert_int_equal(pv_write_full(x->agent, b->sb.data, b->sb.size), 0);
	pv_fbuf_destroy(b);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	int sv[2];
	if (!x || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	x->agent = sv[1];
	x->L = luaL_newstate();
	luaL_openlibs(x->L);
	pv_lua_errors_init(x->L);
	lua_newtable(x->L);
	lua_setglobal(x->L, "provium");
	pv_luaopen_agentconn(x->L);
	lua_pushinteger(x->L, sv[0]);
	lua_setglobal(x->L, "FD");
	lua_ok(x->L, "C = provium._c_agent.connect(FD, 'vm1')");
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	static const char *const feats[] = {"streams"};
	pv_enc_hello(&b, PV_ROLE_AGENT, feats, 1);
	send_frame(x, &b);
	lua_ok(x->L, "C:pump(); assert(C:ready(), 'no hello')");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	lua_close(x->L);
	close(x->agent);
	free(x);
	return 0;
}

/* A reply for `id` whose result is {[NaN] = 1, pad = <pad bytes>}. */
static void send_nan_reply(struct fx *x, uint64_t id, size_t pad)
{
	static uint8_t zeros[8192];
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_reply_ok(&b, id);
	pv_pack_map(&b, 2);
	pv_pack_double(&b, NAN);
	pv_pack_int(&b, 1);
	pv_pack_kv_bin(&b, "pad", zeros, pad);
	send_frame(x, &b);
}

static void test_nan_key_is_a_protocol_error(void **state)
{
	struct fx *x = *state;
	lua_State *L = x->L;
	lua_ok(L, "ID = C:send('ping', {})");
	lua_getglobal(L, "ID");
	send_nan_reply(x, (uint64_t)lua_tointeger(L, -1), 16);
	lua_pop(L, 1);
	lua_ok(L, "local ok, e = pcall(C.pump, C)\n"
		  "assert(ok, 'pump raised: ' .. tostring(e))\n"
		  "local r = C:reply(ID)\n"
		  "assert(type(r) == 'table', 'no reply stored')\n"
		  "assert(r.ok == false and r.code == 'protocol', 'not a protocol error')\n"
		  "assert(r.message:find('NaN'), r.message)\n"
		  "assert(C:closed() == nil, 'the connection stays usable')");
	/* Hundreds of them leak nothing (the frame used to be lost on the raise). */
	lua_ok(L, "collectgarbage(); collectgarbage()");
	size_t base = heap_in_use();
	for (int i = 0; i < 300; i++) {
		lua_ok(L, "ID = C:send('ping', {})");
		lua_getglobal(L, "ID");
		send_nan_reply(x, (uint64_t)lua_tointeger(L, -1), 8192);
		lua_pop(L, 1);
		lua_ok(L, "pcall(C.pump, C); C:forget(ID)");
	}
	lua_ok(L, "collectgarbage(); collectgarbage()");
	size_t grew = heap_growth(base);
	print_message("# 300 NaN replies: heap +%zu KiB\n", grew >> 10);
	assert_true(grew < (256u << 10));
}

static double lua_kib(lua_State *L)
{
	lua_ok(L, "collectgarbage(); collectgarbage(); KIB = collectgarbage('count')");
	lua_getglobal(L, "KIB");
	double k = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return k;
}

static void test_unknown_ids_are_dropped(void **state)
{
	struct fx *x = *state;
	lua_State *L = x->L;
	static uint8_t chunk[65536];
	double before = lua_kib(L);
	/* 256 x 64 KiB of stream data and 256 replies for ids never sent. */
	for (int i = 0; i < 256; i++) {
		struct pv_fbuf b;
		pv_fbuf_init(&b);
		pv_enc_stream(&b, 999, "stdout", chunk, sizeof(chunk));
		send_frame(x, &b);
		pv_fbuf_init(&b);
		pv_enc_reply_ok(&b, 100000 + (uint64_t)i);
		pv_pack_map(&b, 1);
		pv_pack_kv_bin(&b, "data", chunk, 1024);
		send_frame(x, &b);
		lua_ok(L, "C:pump()");
	}
	double grew = lua_kib(L) - before;
	print_message("# unknown ids: Lua heap %+.0f KiB\n", grew);
	assert_true(grew < 512);
	lua_ok(L, "assert(C:reply(100000) == nil)\n"
		  "local d, eof = C:stream(999, 'stdout'); assert(d == '' and not eof)");
	/* A forgotten id is unknown again. */
	lua_ok(L, "ID = C:send('ping', {}); C:forget(ID)");
	lua_getglobal(L, "ID");
	uint64_t id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	pv_enc_stream(&b, id, "stdout", chunk, 100);
	send_frame(x, &b);
	lua_ok(L, "C:pump(); local d = C:stream(ID, 'stdout'); assert(d == '', #d)");
	/* A live request whose op does not stream (ping) gets no stream data kept. */
	lua_ok(L, "ID = C:send('ping', {})");
	lua_getglobal(L, "ID");
	id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	before = lua_kib(L);
	for (int i = 0; i < 64; i++) {
		pv_fbuf_init(&b);
		pv_enc_stream(&b, id, "stdout", chunk, sizeof(chunk));
		send_frame(x, &b);
		lua_ok(L, "C:pump()");
	}
	grew = lua_kib(L) - before;
	print_message("# stream frames for a live ping: Lua heap %+.0f KiB\n", grew);
	assert_true(grew < 256);
	lua_ok(L, "local d = C:stream(ID, 'stdout'); assert(d == '', #d); C:forget(ID)");
	/* A live one still gets its data and reply. */
	lua_ok(L, "ID = C:send('exec', {})");
	lua_getglobal(L, "ID");
	id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	pv_fbuf_init(&b);
	pv_enc_stream(&b, id, "stdout", "hi", 2);
	send_frame(x, &b);
	pv_fbuf_init(&b);
	pv_enc_reply_ok(&b, id);
	pv_pack_map(&b, 0);
	send_frame(x, &b);
	lua_ok(L, "C:pump(); assert(C:reply(ID).ok); assert(C:stream(ID, 'stdout') == 'hi')");
}

static void test_stream_names_are_bounded(void **state)
{
	struct fx *x = *state;
	lua_State *L = x->L;
	lua_ok(L, "ID = C:send('spawn', {})");
	lua_getglobal(L, "ID");
	uint64_t id = (uint64_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	for (int i = 0; i < 1000; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%d", i);
		struct pv_fbuf b;
		pv_fbuf_init(&b);
		pv_enc_stream(&b, id, name, "x", 1);
		send_frame(x, &b);
		if (i % 100 == 99)
			lua_ok(L, "C:pump()");
	}
	lua_ok(L, "C:pump(); local n = 0\n"
		  "for i = 0, 999 do if C:stream(ID, 's' .. i) ~= '' then n = n + 1 end end\n"
		  "assert(n > 0 and n <= 8, 'kept ' .. n .. ' stream names')");
}

int main(void)
{
	heap_meter_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nan_key_is_a_protocol_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ids_are_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_names_are_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
