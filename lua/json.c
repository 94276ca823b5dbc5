/* json.c — the `json` global (API.md), backed by jansson:
 *   json.encode(v [, {pretty=bool, sort_keys=bool}]) -> string
 *   json.decode(s) -> value (arrays come back marked, so they re-encode as [])
 *   json.null  (the sentinel for JSON null), json.array(t) (mark t, even empty, as [])
 * Tables that are 1..n sequences become arrays, other tables objects (integer keys become
 * strings). Invalid JSON and values JSON cannot hold (functions, NaN, cycles, invalid
 * UTF-8) raise `invalid` saying what and where: line/column, or the key path ($.a[2]). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "lua/errors.h"
#include "lua/opts.h"

#define NULL_MT "provium.json.null"
#define ARRAY_MT "provium.json.array"
#define MAX_DEPTH 512

struct enc {
	lua_State *L;
	const void *stack[MAX_DEPTH];  /* tables being encoded, for cycle detection */
	int depth;
	int precision;                  /* digits every real needs to round-trip */
	char path[1024];
	char err[1200];
};

static void path_push(struct enc *e, size_t *mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void path_push(struct enc *e, size_t *mark, const char *fmt, ...)
{
	*mark = strlen(e->path);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->path + *mark, sizeof(e->path) - *mark, fmt, ap);
	va_end(ap);
}

static int is_ident(const char *s, size_t n)
{
	if (!n || !(s[0] == '_' || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z')))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z')))
			return 0;
	return 1;
}

static int has_mt(lua_State *L, int idx, const char *name)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, name);
	int r = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return r;
}

/* 1..n sequence (n > 0) -> n; otherwise -1 */
static lua_Integer seq_len(lua_State *L, int idx)
{
	lua_Integer count = 0, max = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return -1;
		}
		lua_Integer k = lua_tointeger(L, -1);
		if (k > max)
			max = k;
		count++;
	}
	return count == max ? count : -1;
}

static void note_precision(struct enc *e, double d)
{
	char buf[64];
	for (int p = e->precision; p < 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, d);
		if (strtod(buf, NULL) == d)
			return;
		e->precision = p + 1;
	}
}

static json_t *enc_value(struct enc *e, int idx);

static json_t *enc_table(struct enc *e, int idx)
{
	lua_State *L = e->L;
	if (has_mt(L, idx, NULL_MT))
		return json_null();
	const void *p = lua_topointer(L, idx);
	for (int i = 0; i < e->depth; i++)
		if (e->stack[i] == p) {
			snprintf(e->err, sizeof(e->err), "cannot encode a table that contains itself (cycle at %s)", e->path);
			return NULL;
		}
	if (e->depth >= MAX_DEPTH) {
		snprintf(e->err, sizeof(e->err), "nesting deeper than %d levels at %s", MAX_DEPTH, e->path);
		return NULL;
	}
	luaL_checkstack(L, 6, "json.encode");
	e->stack[e->depth++] = p;
	json_t *out = NULL;
	size_t mark;
	lua_Integer n = seq_len(L, idx);
	int marked = has_mt(L, idx, ARRAY_MT);
	if (n > 0 || (marked && n == 0)) {
		out = json_array();
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, idx, i);
			path_push(e, &mark, "[%lld]", (long long)i);
			json_t *v = enc_value(e, -1);
			e->path[mark] = 0;
			lua_pop(L, 1);
			if (!v)
				goto fail;
			json_array_append_new(out, v);
		}
	} else {
		out = json_object();
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			char kbuf[64];
			const char *k;
			size_t kn;
			switch (lua_type(L, -2)) {
			case LUA_TSTRING:
				k = lua_tolstring(L, -2, &kn);
				break;
			case LUA_TNUMBER:
				if (lua_isinteger(L, -2))
					snprintf(kbuf, sizeof(kbuf), "%lld", (long long)lua_tointeger(L, -2));
				else
					snprintf(kbuf, sizeof(kbuf), "%.17g", lua_tonumber(L, -2));
				k = kbuf;
				kn = strlen(kbuf);
				break;
			default:
				snprintf(e->err, sizeof(e->err), "cannot encode a %s as an object key (at %s)",
					 luaL_typename(L, -2), e->path);
				lua_pop(L, 2);
				goto fail;
			}
			if (is_ident(k, kn))
				path_push(e, &mark, ".%.*s", (int)kn, k);
			else
				path_push(e, &mark, "[\"%.*s\"]", (int)(kn > 40 ? 40 : kn), k);
			json_t *v = enc_value(e, -1);
			e->path[mark] = 0;
			if (!v) {
				lua_pop(L, 2);
				goto fail;
			}
			lua_pop(L, 1);
			if (json_object_setn_new(out, k, kn, v) < 0) {
				snprintf(e->err, sizeof(e->err), "object key is not valid UTF-8 (at %s)", e->path);
				lua_pop(L, 1);
				goto fail;
			}
		}
	}
	e->depth--;
	return out;
fail:
	e->depth--;
	json_decref(out);
	return NULL;
}

static json_t *enc_value(struct enc *e, int idx)
{
	lua_State *L = e->L;
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer(lua_tointeger(L, idx));
		double d = lua_tonumber(L, idx);
		if (!isfinite(d)) {
			snprintf(e->err, sizeof(e->err), "cannot encode %s (at %s)",
				 isnan(d) ? "NaN" : d > 0 ? "inf" : "-inf", e->path);
			return NULL;
		}
		note_precision(e, d);
		return json_real(d);
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		json_t *v = json_stringn(s, n);
		if (!v)
			snprintf(e->err, sizeof(e->err), "string is not valid UTF-8 (at %s)", e->path);
		return v;
	}
	case LUA_TTABLE:
		return enc_table(e, idx);
	default:
		if (lua_type(L, idx) == LUA_TUSERDATA && has_mt(L, idx, NULL_MT))
			return json_null();
		snprintf(e->err, sizeof(e->err), "cannot encode a %s (at %s)", luaL_typename(L, idx), e->path);
		return NULL;
	}
}

static int opt_bool(lua_State *L, int idx, const char *k)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		return 0;
	lua_getfield(L, idx, k);
	int r = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return r;
}

static int json_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	pv_opts_check(L, 2, "json.encode", NULL, "pretty:bool sort_keys:bool");
	struct enc *e = calloc(1, sizeof(*e));
	if (!e)
		return pv_lua_error(L, "infra", "json.encode", NULL, "out of memory");
	e->L = L;
	e->precision = 15;
	strcpy(e->path, "$");
	json_t *j = enc_value(e, 1);
	if (!j) {
		char msg[sizeof(e->err)];
		memcpy(msg, e->err, sizeof(msg));
		free(e);
		return pv_lua_error(L, "invalid", "json.encode", NULL, "%s", msg);
	}
	size_t flags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(e->precision);
	if (opt_bool(L, 2, "pretty"))
		flags |= JSON_INDENT(2);
	else
		flags |= JSON_COMPACT;
	if (opt_bool(L, 2, "sort_keys"))
		flags |= JSON_SORT_KEYS;
	free(e);
	char *s = json_dumps(j, flags);
	json_decref(j);
	if (!s)
		return pv_lua_error(L, "infra", "json.encode", NULL, "out of memory");
	lua_pushstring(L, s);
	free(s);
	return 1;
}

static void dec_value(lua_State *L, json_t *j)
{
	luaL_checkstack(L, 4, "json.decode");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		size_t kn;
		json_t *v;
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_keylen_foreach(j, k, kn, v) {
			lua_pushlstring(L, k, kn);
			dec_value(L, v);
			lua_rawset(L, -3);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			dec_value(L, v);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		luaL_setmetatable(L, ARRAY_MT);
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(j));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	default:
		lua_getfield(L, LUA_REGISTRYINDEX, NULL_MT ".value");
		break;
	}
}

static int json_decode(lua_State *L)
{
	size_t n;
	if (lua_type(L, 1) != LUA_TSTRING)
		return pv_lua_error(L, "invalid", "json.decode", NULL, "expected a string, got %s",
				    luaL_typename(L, 1));
	const char *s = lua_tolstring(L, 1, &n);
	json_error_t err;
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!j)
		return pv_lua_error(L, "invalid", "json.decode", NULL, "line %d column %d: %s",
				    err.line, err.column, err.text);
	dec_value(L, j);
	json_decref(j);
	return 1;
}

static int json_array_mark(lua_State *L)
{
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	else if (lua_type(L, 1) != LUA_TTABLE)
		return pv_lua_error(L, "invalid", "json.array", NULL, "expected a table, got %s",
				    luaL_typename(L, 1));
	lua_settop(L, 1);
	luaL_setmetatable(L, ARRAY_MT);
	return 1;
}

static int null_tostring(lua_State *L)
{
	lua_pushstring(L, "json.null");
	return 1;
}

int pv_luaopen_json(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"encode", json_encode},
		{"decode", json_decode},
		{"array", json_array_mark},
		{NULL, NULL},
	};
	/* the array mark: chan.c (msgpack) also honours __jsonarray */
	luaL_newmetatable(L, ARRAY_MT);
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "__jsonarray");
	lua_pop(L, 1);
	/* json.null: an empty table with a protected metatable */
	luaL_newmetatable(L, NULL_MT);
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "__jsonnull");
	lua_pushcfunction(L, null_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushstring(L, "json.null");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	lua_newtable(L);
	luaL_setmetatable(L, NULL_MT);
	lua_setfield(L, LUA_REGISTRYINDEX, NULL_MT ".value");

	luaL_newlib(L, fns);
	lua_getfield(L, LUA_REGISTRYINDEX, NULL_MT ".value");
	lua_setfield(L, -2, "null");
	lua_setglobal(L, "json");
	return 0;
}
