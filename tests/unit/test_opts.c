/* test_opts.c — the option checker (lua/opts.c) on its own, also under ASan: spec
 * parsing, every kind, unknown and near-miss keys (and keys too long to compare),
 * the error table's fields, and the dot-call message. The Lua API's use of it is
 * tests/lua/options_test.lua. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lua/errors.h"
#include "lua/opts.h"

#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

static lua_State *L;

static int setup(void **state)
{
	(void)state;
	L = luaL_newstate();
	luaL_openlibs(L);
	pv_lua_errors_init(L);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	lua_close(L);
	return 0;
}

static const char *spec_of_call;

/* check(opts): pv_opts_check of opts against spec_of_call, op "x:y", vm "web" */
static int l_check(lua_State *l)
{
	pv_opts_check(l, 1, "x:y", "web", spec_of_call);
	return 0;
}

/* Runs the Lua expression `opts` through the checker; NULL when it passes, else the
 * error's message (its code must be invalid, op x:y, vm web), and *option its key. */
static const char *run(const char *spec, const char *opts, const char **option)
{
	static char msg[1024], opt[128];
	char chunk[512];
	spec_of_call = spec;
	snprintf(chunk, sizeof(chunk), "return %s", opts);
	lua_settop(L, 0);
	lua_pushcfunction(L, l_check);
	assert_int_equal(luaL_dostring(L, chunk), LUA_OK);
	if (lua_pcall(L, 1, 0, 0) == LUA_OK)
		return NULL;
	assert_int_equal(lua_type(L, -1), LUA_TTABLE);
	lua_getfield(L, -1, "code");
	assert_string_equal(lua_tostring(L, -1), "invalid");
	lua_getfield(L, -2, "op");
	assert_string_equal(lua_tostring(L, -1), "x:y");
	lua_getfield(L, -3, "vm");
	assert_string_equal(lua_tostring(L, -1), "web");
	lua_getfield(L, -4, "option");
	snprintf(opt, sizeof(opt), "%s", lua_isnil(L, -1) ? "(none)" : lua_tostring(L, -1));
	if (option)
		*option = opt;
	lua_getfield(L, -5, "message");
	snprintf(msg, sizeof(msg), "%s", lua_tostring(L, -1));
	return msg;
}

#define SPEC "cwd:string env:table timeout:secs user:user from:start|end n:posint"

static void test_good_options_pass(void **state)
{
	(void)state;
	assert_null(run(SPEC, "nil", NULL));
	assert_null(run(SPEC, "{}", NULL));
	assert_null(run(SPEC, "{cwd='/', env={}, timeout=0, user=0, from='end', n=2.0}", NULL));
	assert_null(run(SPEC, "{user='root', timeout=1.5}", NULL));
	assert_null(run("a:any b:bool c:function d:int e:uint f:byte g:nonneg h:rate i:number",
			"{a={}, b=false, c=print, d=-3, e=0, f=255, g=0.5, h=1, i=-2.5}", NULL));
}

static void test_unknown_keys(void **state)
{
	(void)state;
	const char *opt;
	assert_string_equal(run(SPEC, "{timout=5}", &opt),
			    "unknown option 'timout' (did you mean 'timeout'?); x:y takes: cwd, env, "
			    "from, n, timeout, user");
	assert_string_equal(opt, "timout");
	assert_string_equal(run(SPEC, "{TIMEOUT=5}", NULL),
			    "unknown option 'TIMEOUT' (did you mean 'timeout'?); x:y takes: cwd, env, "
			    "from, n, timeout, user");
	assert_string_equal(run(SPEC, "{evn={}}", NULL),
			    "unknown option 'evn' (did you mean 'env'?); x:y takes: cwd, env, from, n, "
			    "timeout, user");
	/* two edits are a near miss only from five letters on */
	assert_string_equal(run(SPEC, "{cxx='/'}", NULL),
			    "unknown option 'cxx'; x:y takes: cwd, env, from, n, timeout, user");
	assert_string_equal(run(SPEC, "{tmeuot=1}", NULL),
			    "unknown option 'tmeuot' (did you mean 'timeout'?); x:y takes: cwd, env, "
			    "from, n, timeout, user");
	/* a key longer than any name is compared without overflowing */
	char big[200];
	memset(big, 'k', 150);
	strcpy(big + 150, "=1}");
	char opts[256] = "{";
	strcat(opts, big);
	const char *m = run(SPEC, opts, &opt);
	assert_non_null(strstr(m, "unknown option 'kkkk"));
	assert_null(strstr(m, "did you mean"));
	assert_string_equal(run("", "{x=1}", NULL), "unknown option 'x': x:y takes no options");
	assert_string_equal(run(SPEC, "{5}", &opt),
			    "opts[1]: fields are named (opts.name = value); x:y takes: cwd, env, "
			    "from, n, timeout, user");
	assert_string_equal(opt, "(none)");
}

static void test_bad_values(void **state)
{
	(void)state;
	const char *opt;
	assert_string_equal(run(SPEC, "'soon'", &opt), "opts must be a table, got \"soon\"");
	assert_string_equal(run(SPEC, "5", NULL), "opts must be a table, got 5");
	assert_string_equal(run(SPEC, "{timeout=-1}", &opt),
			    "opts.timeout must be a non-negative number of seconds, got -1");
	assert_string_equal(opt, "timeout");
	assert_string_equal(run(SPEC, "{timeout=0/0}", NULL),
			    "opts.timeout must be a non-negative number of seconds, got NaN");
	assert_string_equal(run(SPEC, "{timeout=-math.huge}", NULL),
			    "opts.timeout must be a non-negative number of seconds, got -inf");
	assert_string_equal(run(SPEC, "{timeout='5'}", NULL),
			    "opts.timeout must be a non-negative number of seconds, got \"5\"");
	assert_string_equal(run(SPEC, "{n=0}", NULL), "opts.n must be a positive integer, got 0");
	assert_string_equal(run(SPEC, "{n=1.5}", NULL), "opts.n must be a positive integer, got 1.5");
	assert_string_equal(run(SPEC, "{env={}, cwd={}}", NULL), "opts.cwd must be a string, got a table");
	assert_string_equal(run(SPEC, "{user=-1}", NULL), "opts.user must be a user name or a uid, got -1");
	assert_string_equal(run(SPEC, "{from='mid'}", NULL),
			    "opts.from must be \"start\" or \"end\", got \"mid\"");
	assert_string_equal(run("m:a|b|c", "{m=true}", NULL),
			    "opts.m must be one of \"a\", \"b\" or \"c\", got true");
	assert_string_equal(run("r:rate", "{r=1.01}", NULL), "opts.r must be a number in 0..1, got 1.01");
	assert_string_equal(run("b:byte", "{b=256}", NULL), "opts.b must be an integer 0..255, got 256");
	assert_string_equal(run("s:table", "{s=string.rep('x', 60)}", NULL),
			    "opts.s must be a table, got \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"");
}

static int l_self(lua_State *l)
{
	return pv_self_error(l, "vm:run", 1, "VM");
}

static void test_self_error(void **state)
{
	(void)state;
	lua_settop(L, 0);
	lua_pushcfunction(L, l_self);
	lua_pushstring(L, "ls");
	assert_int_not_equal(lua_pcall(L, 1, 0, 0), LUA_OK);
	lua_getfield(L, -1, "message");
	assert_string_equal(lua_tostring(L, -1),
			    "call it with a colon: vm:run(...), not vm.run(...) (which passes \"ls\" as the VM)");
	lua_getfield(L, -2, "op");
	assert_string_equal(lua_tostring(L, -1), "vm:run");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_options_pass),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_self_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
