/* fuzz_agent.h — a hostile agent against the host's connection (lua/agentconn.c
 * through its Lua binding, as lua/conn.lua uses it). A fake agent on a socketpair
 * says hello, then the input scripts both sides; each op is [op] and its bytes:
 *   0 host c:send(op)                 1 agent reply ok, result = raw msgpack bytes
 *   2 agent stream frame (name, data) 3 agent eof frame   4 agent error reply
 *   5 host c:pump()                   6 host c:reply / c:stream / c:forget of an id
 *   7 raw bytes into the socket (broken framing)
 * Ids are the host's own or arbitrary (unknown) ones. Every Lua call runs under
 * pcall; a raise must be a provium error table or the connection's own message.
 * At the end, with every id forgotten and the connection closed, the Lua heap must
 * be back where it started (nothing kept for ids the host did not wait for) and
 * nothing may leak (ASan). Shared by the libFuzzer harness and the replay. */
#ifndef PROVIUM_FUZZ_AGENT_H
#define PROVIUM_FUZZ_AGENT_H

#include "agent/proto.h"
#include "lua/errors.h"
#include "vmm/util.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int pv_luaopen_agentconn(lua_State *L);

static lua_State *fza_state(void)
{
	static lua_State *L;
	if (!L) {
		L = luaL_newstate();
		luaL_openlibs(L);
		pv_lua_errors_init(L);
		lua_newtable(L);
		lua_setglobal(L, "provium");
		pv_luaopen_agentconn(L);
		/* call(f, ...): runs a method under pcall; a raise that is not a provium
		 * error table (or a plain closed-connection string) is a finding */
		if (luaL_dostring(L, "function CALL(f, ...)\n"
				     "  local ok, e = pcall(f, ...)\n"
				     "  if not ok and type(e) ~= 'table' then error('raw error: ' .. tostring(e)) end\n"
				     "  return ok and e\n"
				     "end") != LUA_OK)
			abort();
	}
	return L;
}

static void fza_lua(lua_State *L, const char *code)
{
	if (luaL_dostring(L, code) != LUA_OK) {
		fprintf(stderr, "fuzz_agent: %s\n", lua_tostring(L, -1));
		abort();
	}
}

static void fza_frame(int fd, struct pv_fbuf *b)
{
	if (pv_fbuf_finish(b) == 0 && pv_write_full(fd, b->sb.data, b->sb.size) < 0)
		(void)0; /* the host side closed: fine */
	pv_fbuf_destroy(b);
}

static inline int pv_fuzz_agent(const uint8_t *data, size_t size)
{
	static const char *const ops[] = {"ping", "exec", "spawn", "read_file", "tail",
					  "stat", "write_file", "tail_fd"};
	static const char *const names[] = {"stdout", "stderr", "data", "tail", "x"};
	lua_State *L = fza_state();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fza_lua(L, "collectgarbage(); collectgarbage(); BASE = collectgarbage('count'); IDS = {}");
	lua_pushinteger(L, sv[0]);
	lua_setglobal(L, "FD");
	fza_lua(L, "C = provium._c_agent.connect(FD, 'fuzz')");
	struct pv_fbuf b;
	pv_fbuf_init(&b);
	static const char *const feats[] = {"streams"};
	pv_enc_hello(&b, PV_ROLE_AGENT, feats, 1);
	fza_frame(sv[1], &b);
	uint64_t ids[16] = {0};
	unsigned nids = 0;
	char code[160];
	for (size_t i = 0; i < size;) {
		uint8_t op = data[i++], a = i < size ? data[i++] : 0;
		uint64_t id = (a & 0x80) ? (uint64_t)a * 1000 : (nids ? ids[a % nids] : a);
		size_t n = PV_MIN((size_t)(a & 0x3f), size - i);
		const uint8_t *p = data + i;
		switch (op % 8) {
		case 0:
			snprintf(code, sizeof(code), "local id = CALL(C.send, C, '%s', {}); "
				 "if id then IDS[#IDS + 1] = id end; ID = id or 0", ops[a % 8]);
			fza_lua(L, code);
			lua_getglobal(L, "ID");
			if (lua_tointeger(L, -1) > 0 && nids < 16)
				ids[nids++] = (uint64_t)lua_tointeger(L, -1);
			lua_pop(L, 1);
			break;
		case 1:
			pv_fbuf_init(&b);
			pv_enc_reply_ok(&b, id);
			if (n)
				msgpack_sbuffer_write(&b.sb, (const char *)p, n);
			else
				pv_pack_map(&b, 0);
			fza_frame(sv[1], &b);
			i += n;
			break;
		case 2:
		case 3:
			pv_fbuf_init(&b);
			if (op % 8 == 2)
				pv_enc_stream(&b, id, names[op / 8 % 5], p, n);
			else
				pv_enc_eof(&b, id, names[op / 8 % 5]);
			fza_frame(sv[1], &b);
			i += op % 8 == 2 ? n : 0;
			break;
		case 4:
			pv_fbuf_init(&b);
			pv_enc_reply_err(&b, id, a, (a & 1) ? PV_ERRCODE_PROTOCOL : NULL, "no");
			fza_frame(sv[1], &b);
			break;
		case 5:
			fza_lua(L, "CALL(C.pump, C)");
			break;
		case 6:
			snprintf(code, sizeof(code), "local id = %llu; CALL(C.reply, C, id); "
				 "CALL(C.stream, C, id, '%s'); if %d == 1 then CALL(C.forget, C, id) end",
				 (unsigned long long)id, names[op / 8 % 5], (op / 8) & 1);
			fza_lua(L, code);
			break;
		case 7:
			if (pv_write_full(sv[1], p, n) < 0)
				(void)0;
			i += n;
			break;
		}
	}
	fza_lua(L, "CALL(C.pump, C)\n"
		   "for _, id in ipairs(IDS) do CALL(C.forget, C, id) end\n"
		   "C:close(); C = nil; IDS = nil\n"
		   "collectgarbage(); collectgarbage()\n"
		   "local grew = collectgarbage('count') - BASE\n"
		   "if grew > 64 then error(('Lua heap grew by %.0f KiB'):format(grew)) end");
	close(sv[1]);
	return 0;
}

#endif
