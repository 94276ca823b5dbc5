/* repl.c — the line editing of the prompt (lua/repl.lua, docs/debugging.md): on a
 * terminal libedit's readline (history in a file, Tab completion asked of
 * provium._repl_complete), otherwise plain lines from stdin, no prompt shown.
 *   provium._c_repl_open(history_file|nil) -> is_tty: takes the terminal (the worker
 *       is in the background of it), loads the history
 *   provium._c_repl_read(prompt) -> line, or nil at the end of input (Ctrl-D)
 *   provium._c_repl_close(): saves the history, gives the terminal back */
#include "runner/shell.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>
#include <lua.h>

#define HISTORY_LINES 1000

static struct {
	int open;               /* a prompt at a failure inside run() at the prompt: 2 */
	bool tty;
	pid_t fg;               /* the group the terminal goes back to */
	char *history;          /* the history file, or NULL */
	lua_State *L;           /* while readline runs: for the completion */
	char **matches;         /* the completion candidates of the current Tab */
	size_t nmatches, next;
} R;

static void free_matches(void)
{
	for (size_t i = 0; i < R.nmatches; i++)
		free(R.matches[i]);
	free(R.matches);
	R.matches = NULL;
	R.nmatches = R.next = 0;
}

/* Asks provium._repl_complete(text) for the candidates (an array of strings). */
static void ask_lua(const char *text)
{
	lua_State *L = R.L;
	int top = lua_gettop(L);

	free_matches();
	lua_getglobal(L, "provium");
	if (lua_getfield(L, -1, "_repl_complete") != LUA_TFUNCTION)
		goto out;
	lua_pushstring(L, text);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1))
		goto out;
	size_t n = (size_t)luaL_len(L, -1);
	R.matches = calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; R.matches && i < n; i++) {
		if (lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING)
			R.matches[R.nmatches++] = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
out:
	lua_settop(L, top);
}

static char *next_match(const char *text, int state)
{
	if (state == 0) {
		ask_lua(text);
		R.next = 0;
	}
	while (R.next < R.nmatches) {
		char *m = R.matches[R.next++];

		if (m)
			return strdup(m);
	}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1; /* no file names when Lua has nothing */
	return rl_completion_matches(text, next_match);
}

/* mkdir -p of the history file's directory ($XDG_STATE_HOME/provium). */
static void make_parent(const char *path)
{
	char *p = strdup(path);

	for (char *s = p ? p + 1 : NULL; s && *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		mkdir(p, 0700);
		*s = '/';
	}
	free(p);
}

static int l_open(lua_State *L)
{
	const char *hist = luaL_optstring(L, 1, NULL);

	if (R.open++) {
		lua_pushboolean(L, R.tty); /* nested: the terminal is ours already */
		return 1;
	}
	R.tty = isatty(0) && isatty(2);
	R.fg = 0;
	if (R.tty) {
		R.fg = pv_take_terminal();
		rl_instream = stdin;
		rl_outstream = stderr; /* stdout may carry TAP or events */
		/* a Lua expression is one word: vm:wait_ready, provium.env */
		rl_basic_word_break_characters = " \t\n\"'`=+-*/%^<>~,;()[]{}#";
		rl_completion_append_character = '\0';
		rl_attempted_completion_function = complete;
		using_history();
		stifle_history(HISTORY_LINES);
		free(R.history);
		R.history = hist ? strdup(hist) : NULL;
		if (R.history) {
			make_parent(R.history);
			read_history(R.history);
		}
	}
	lua_pushboolean(L, R.tty);
	return 1;
}

/* A line of any length from a non-terminal stdin, without its newline. */
static int read_plain(lua_State *L)
{
	luaL_Buffer b;
	char buf[4096];
	bool any = false;

	luaL_buffinit(L, &b);
	while (fgets(buf, sizeof(buf), stdin)) {
		size_t n = strlen(buf);

		any = true;
		if (n && buf[n - 1] == '\n') {
			luaL_addlstring(&b, buf, n - 1);
			luaL_pushresult(&b);
			return 1;
		}
		luaL_addlstring(&b, buf, n);
	}
	luaL_pushresult(&b);
	if (!any)
		lua_pushnil(L);
	return 1;
}

static volatile sig_atomic_t interrupted;

static void on_int(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int l_read(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "> ");

	if (!R.open)
		return luaL_error(L, "the prompt is not open");
	if (!R.tty)
		return read_plain(L);
	fflush(stderr);
	/* Ctrl-C drops the line being typed (as lua -i), it does not end the run */
	struct sigaction sa = { .sa_handler = on_int }, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	interrupted = 0;
	R.L = L;
	char *line = readline(prompt);
	R.L = NULL;
	sigaction(SIGINT, &old, NULL);
	free_matches();
	if (!line && interrupted) {
		fputs("^C\n", stderr);
		lua_pushliteral(L, "");
		return 1;
	}
	if (!line) {
		fputc('\n', stderr); /* Ctrl-D: the next output starts a line of its own */
		lua_pushnil(L);
		return 1;
	}
	if (*line)
		add_history(line);
	lua_pushstring(L, line);
	free(line);
	return 1;
}

static int l_close(lua_State *L)
{
	(void)L;
	if (!R.open || --R.open)
		return 0;
	if (R.tty && R.history && write_history(R.history) != 0)
		fprintf(stderr, "provium: cannot save the prompt's history in %s: %s\n",
			R.history, strerror(errno));
	free(R.history);
	R.history = NULL;
	if (R.tty) {
		clear_history(); /* a prompt opened again reads the file afresh */
		pv_give_terminal(R.fg);
	}
	R.fg = 0;
	return 0;
}

int pv_luaopen_repl(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"_c_repl_open", l_open},
		{"_c_repl_read", l_read},
		{"_c_repl_close", l_close},
		{NULL, NULL},
	};

	lua_getglobal(L, "provium");
	luaL_setfuncs(L, fns, 0);
	lua_pop(L, 1);
	return 0;
}
