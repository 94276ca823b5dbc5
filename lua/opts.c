/* opts.c — the one argument and option checker of the Lua API (opts.h,
 * docs/options.md), used by every method from C (disk.c, json.c) and from Lua as
 * provium._opts(opts, op, vm, spec) -> opts or {}, provium._arg(value, kind, op, vm,
 * what [, nil_ok]) -> value and provium._self_error(op, got). One spec language and
 * one set of messages, so every method says the same thing the same way. */
#include "lua/opts.h"
#include "lua/errors.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define MAX_KEY 48

/* A short description of the value at idx: 5, -1.5, NaN, "soon", true, a table. */
static void describe(lua_State *L, int idx, char *buf, size_t size)
{
	switch (lua_type(L, idx)) {
	case LUA_TNONE:
	case LUA_TNIL:
		snprintf(buf, size, "nil");
		break;
	case LUA_TBOOLEAN:
		snprintf(buf, size, "%s", lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
		} else {
			double d = lua_tonumber(L, idx);
			if (isnan(d))
				snprintf(buf, size, "NaN");
			else if (isinf(d))
				snprintf(buf, size, "%s", d < 0 ? "-inf" : "inf");
			else
				snprintf(buf, size, "%.14g", d);
		}
		break;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		snprintf(buf, size, "\"%.*s%s\"", n > 40 ? 40 : (int)n, s, n > 40 ? "..." : "");
		break;
	}
	default: {
		const char *t = luaL_typename(L, idx);
		snprintf(buf, size, "%s %s", strchr("aeiou", t[0]) ? "an" : "a", t);
	}
	}
}

static bool integral(lua_State *L, int idx, lua_Integer *v)
{
	int ok = 0;
	if (lua_type(L, idx) != LUA_TNUMBER)
		return false;
	*v = lua_tointegerx(L, idx, &ok);
	return ok;
}

static bool finite_number(lua_State *L, int idx, double *d)
{
	if (lua_type(L, idx) != LUA_TNUMBER)
		return false;
	*d = lua_tonumber(L, idx);
	return isfinite(*d);
}

static bool is(const char *kind, size_t n, const char *name)
{
	return strlen(name) == n && !memcmp(kind, name, n);
}

/* true when the value at idx fits kind (kind[0..n)); else what it must be in want */
static bool kind_ok(lua_State *L, int idx, const char *kind, size_t n, char *want, size_t size)
{
	lua_Integer i;
	double d;
	int t = lua_type(L, idx);

#define KIND(name, ok, text)                            \
	if (is(kind, n, name)) {                        \
		if (ok)                                 \
			return true;                    \
		snprintf(want, size, "%s", text);       \
		return false;                           \
	}
	KIND("any", true, "anything")
	KIND("string", t == LUA_TSTRING, "a string")
	KIND("bool", t == LUA_TBOOLEAN, "true or false")
	KIND("table", t == LUA_TTABLE, "a table")
	KIND("function", t == LUA_TFUNCTION, "a function")
	KIND("number", finite_number(L, idx, &d), "a number")
	KIND("int", integral(L, idx, &i), "an integer")
	KIND("uint", integral(L, idx, &i) && i >= 0, "a non-negative integer")
	KIND("posint", integral(L, idx, &i) && i >= 1, "a positive integer")
	KIND("byte", integral(L, idx, &i) && i >= 0 && i <= 255, "an integer 0..255")
	KIND("secs", finite_number(L, idx, &d) && d >= 0, "a non-negative number of seconds")
	KIND("nonneg", finite_number(L, idx, &d) && d >= 0, "a non-negative number")
	KIND("rate", finite_number(L, idx, &d) && d >= 0 && d <= 1, "a number in 0..1")
	KIND("user", t == LUA_TSTRING || (integral(L, idx, &i) && i >= 0), "a user name or a uid")
#undef KIND
	if (memchr(kind, '|', n)) {
		/* one of the words a|b|c: "start" or "end"; one of "a", "b" or "c" */
		size_t len, words = 1;
		const char *s = t == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
		size_t w = 0, at = 0;
		for (size_t i = 0; i < n; i++)
			words += kind[i] == '|';
		for (const char *p = kind; p <= kind + n; p++) {
			if (p == kind + n || *p == '|') {
				size_t wl = (size_t)(p - kind) - at;
				if (s && wl == len && !memcmp(s, kind + at, len))
					return true;
				const char *sep = !at ? (words > 2 ? "one of " : "")
						      : (p == kind + n ? " or " : ", ");
				w += (size_t)snprintf(want + w, w < size ? size - w : 0, "%s\"%.*s\"", sep,
						      (int)wl, kind + at);
				at = (size_t)(p - kind) + 1;
			}
		}
		return false;
	}
	luaL_error(L, "opts spec: unknown kind '%.*s'", (int)n, kind);
	return false;
}

/* Raises invalid; the error gets option = key when key is set. */
__attribute__((noreturn)) static int raise(lua_State *L, const char *op, const char *vm, const char *key,
		 const char *msg)
{
	pv_lua_pusherror(L, "invalid", op, vm, "%s", msg);
	if (key) {
		lua_pushstring(L, key);
		lua_setfield(L, -2, "option");
	}
	lua_error(L);
	__builtin_unreachable();
}

/* The next "name:kind" word of spec at *p: name/kind spans; false at the end. */
static bool next_word(const char **p, const char **name, size_t *nlen, const char **kind,
		      size_t *klen)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	if (!*s)
		return false;
	const char *e = s + strcspn(s, " ");
	const char *colon = memchr(s, ':', (size_t)(e - s));
	*name = s;
	*nlen = colon ? (size_t)(colon - s) : (size_t)(e - s);
	*kind = colon ? colon + 1 : "any";
	*klen = colon ? (size_t)(e - colon - 1) : 3;
	*p = e;
	return true;
}

struct word {
	const char *s;
	size_t n;
};

static int word_cmp(const void *a, const void *b)
{
	const struct word *x = a, *y = b;
	int c = strncmp(x->s, y->s, x->n < y->n ? x->n : y->n);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* the keys of spec in alphabetical order: "cwd, env, stdin, timeout, user" */
static void key_list(const char *spec, char *buf, size_t size)
{
	struct word keys[64];
	const char *p = spec, *name, *kind;
	size_t nlen, klen, w = 0, n = 0;
	while (n < 64 && next_word(&p, &name, &nlen, &kind, &klen))
		keys[n++] = (struct word){ name, nlen };
	qsort(keys, n, sizeof(keys[0]), word_cmp);
	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		w += (size_t)snprintf(buf + w, w < size ? size - w : 0, "%s%.*s", w ? ", " : "",
				      (int)keys[i].n, keys[i].s);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Optimal string alignment distance (edits, adjacent swaps), case-insensitive. */
static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t d[MAX_KEY + 1][MAX_KEY + 1];
	if (n > MAX_KEY || m > MAX_KEY)
		return (size_t)-1;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
			    lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[n][m];
}

/* The key of spec closest to key when it is a near miss (one edit for short keys,
 * two from 5 characters on), else NULL; its length in *len. */
static const char *near_miss(const char *spec, const char *key, size_t *len)
{
	const char *p = spec, *name, *kind, *best = NULL;
	size_t nlen, klen, klen_key = strlen(key), bestd = (size_t)-1;
	size_t limit = klen_key >= 5 ? 2 : 1;
	while (next_word(&p, &name, &nlen, &kind, &klen)) {
		size_t d = distance(key, klen_key, name, nlen);
		if (d <= limit && d < bestd) {
			bestd = d;
			best = name;
			*len = nlen;
		}
	}
	return best;
}

/* what: "opts" for options, else the name of the table ("profile", "spec") */
static int unknown_key(lua_State *L, const char *op, const char *vm, const char *spec,
		       const char *key, const char *what)
{
	char keys[512], msg[1024], hint[MAX_KEY + 32] = "";
	size_t n = 0;
	const char *near = near_miss(spec, key, &n);
	if (near)
		snprintf(hint, sizeof(hint), " (did you mean '%.*s'?)", (int)n, near);
	key_list(spec, keys, sizeof(keys));
	bool opts = !strcmp(what, "opts");
	char unknown[MAX_KEY + 64];
	if (opts)
		snprintf(unknown, sizeof(unknown), "unknown option '%.*s'", MAX_KEY, key);
	else
		snprintf(unknown, sizeof(unknown), "unknown %s field '%.*s'", what, MAX_KEY, key);
	if (keys[0])
		snprintf(msg, sizeof(msg), "%s%s; %s takes: %s", unknown, hint, op, keys);
	else
		snprintf(msg, sizeof(msg), "%s: %s takes no options", unknown, op);
	return raise(L, op, vm, key, msg);
}

static void check_table(lua_State *L, int idx, const char *op, const char *vm,
			const char *spec, const char *what)
{
	char got[96], want[256], msg[1024];

	idx = lua_absindex(L, idx);
	if (lua_isnoneornil(L, idx))
		return;
	if (lua_type(L, idx) != LUA_TTABLE) {
		describe(L, idx, got, sizeof(got));
		snprintf(msg, sizeof(msg), "%s must be a table, got %s", what, got);
		raise(L, op, vm, NULL, msg);
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		/* key at -2, value at -1 */
		if (lua_type(L, -2) != LUA_TSTRING) {
			char keys[512];
			describe(L, -2, got, sizeof(got));
			key_list(spec, keys, sizeof(keys));
			snprintf(msg, sizeof(msg), "%s[%s]: fields are named (%s.name = value); "
				 "%s takes: %s", what, got, what, op, keys[0] ? keys : "no options");
			raise(L, op, vm, NULL, msg);
		}
		const char *key = lua_tostring(L, -2), *p = spec, *name, *kind;
		size_t nlen, klen;
		bool found = false;
		while (!found && next_word(&p, &name, &nlen, &kind, &klen))
			found = strlen(key) == nlen && !memcmp(key, name, nlen);
		if (!found)
			unknown_key(L, op, vm, spec, key, what);
		if (!kind_ok(L, -1, kind, klen, want, sizeof(want))) {
			describe(L, -1, got, sizeof(got));
			snprintf(msg, sizeof(msg), "%s.%s must be %s, got %s", what, key, want, got);
			raise(L, op, vm, key, msg);
		}
		lua_pop(L, 1);
	}
}

void pv_opts_check(lua_State *L, int idx, const char *op, const char *vm, const char *spec)
{
	check_table(L, idx, op, vm, spec, "opts");
}

void pv_arg_check(lua_State *L, int idx, const char *kind, const char *op, const char *vm,
		  const char *what, int nil_ok)
{
	char got[96], want[256], msg[512];

	if (nil_ok && lua_isnoneornil(L, idx))
		return;
	if (kind_ok(L, idx, kind, strlen(kind), want, sizeof(want)))
		return;
	describe(L, idx, got, sizeof(got));
	snprintf(msg, sizeof(msg), "%s must be %s, got %s", what, want, got);
	raise(L, op, vm, NULL, msg);
}

int pv_self_error(lua_State *L, const char *op, int idx, const char *kind)
{
	char got[96], msg[512];
	const char *colon = strchr(op, ':');
	int rl = colon ? (int)(colon - op) : (int)strlen(op);
	const char *method = colon ? colon + 1 : op;

	describe(L, idx, got, sizeof(got));
	snprintf(msg, sizeof(msg), "call it with a colon: %s(...), not %.*s.%s(...) (which passes "
		 "%s as the %s)", op, rl, op, method, got, kind);
	raise(L, op, NULL, NULL, msg);
}

/* provium._opts(opts, op, vm, spec [, what]) -> opts, or a new empty table for nil;
 * what names a table that is not opts in messages ("profile": "unknown profile
 * field 'x'", "profile.memory must be ...") */
static int l_opts(lua_State *L)
{
	const char *op = luaL_checkstring(L, 2), *vm = luaL_optstring(L, 3, NULL);
	check_table(L, 1, op, vm, luaL_checkstring(L, 4), luaL_optstring(L, 5, "opts"));
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	else
		lua_pushvalue(L, 1);
	return 1;
}

/* provium._arg(value, kind, op, vm, what [, nil_ok]) -> value */
static int l_arg(lua_State *L)
{
	const char *kind = luaL_checkstring(L, 2), *op = luaL_checkstring(L, 3);
	pv_arg_check(L, 1, kind, op, luaL_optstring(L, 4, NULL), luaL_checkstring(L, 5),
		     lua_toboolean(L, 6));
	lua_settop(L, 1);
	return 1;
}

/* provium._self_error(op, got, kind): got is what came where the receiver goes */
static int l_self_error(lua_State *L)
{
	const char *op = luaL_checkstring(L, 1), *kind = luaL_checkstring(L, 3);
	return pv_self_error(L, op, 2, kind);
}

int pv_luaopen_opts(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"_opts", l_opts}, {"_arg", l_arg}, {"_self_error", l_self_error}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_setfuncs(L, fns, 0);
	lua_pop(L, 1);
	return 0;
}
