/* exec.c — starting commands (argv or `/bin/sh -c`, env, cwd, user, a process group
 * each) and the `exec` op: run to completion with stdin, a timeout, and stdout/
 * stderr collected (streamed ahead of the reply when they outgrow a chunk). */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
extern pthread_mutex_t procs_lock;
void procs_insert_locked(struct proc *p);

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void cmd_free(struct cmd *cmd)
{
	free_strv(cmd->argv);
	free_strv(cmd->sh_argv);
	free_strv(cmd->envp);
	free(cmd->path);
	memset(cmd, 0, sizeof(*cmd));
}

/* Looks a user up in /etc/passwd (the agent is static: no NSS). */
static int lookup_user(const char *name, long uid_want, uid_t *uid, gid_t *gid,
		       char *home, size_t homelen, char *login, size_t loginlen)
{
	FILE *f = fopen("/etc/passwd", "re");
	char line[1024];
	int rc = -ENOENT;

	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *fields[7], *save = NULL, *s = line;
		int n = 0;

		line[strcspn(line, "\n")] = 0;
		/* strsep keeps empty fields (password is often empty) */
		while (n < 7 && (fields[n] = strsep(&s, ":")))
			n++;
		(void)save;
		if (n < 7)
			continue;
		if (name ? strcmp(fields[0], name) != 0 : atol(fields[2]) != uid_want)
			continue;
		*uid = (uid_t)atol(fields[2]);
		*gid = (gid_t)atol(fields[3]);
		snprintf(home, homelen, "%s", fields[5]);
		snprintf(login, loginlen, "%s", fields[0]);
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

static int strv_push(char ***v, size_t *n, char *s)
{
	char **nv;

	if (!s)
		return -ENOMEM;
	nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* Sets name=value in an env vector (replacing an existing entry). */
static int env_set(char ***v, size_t *n, const char *name, size_t nlen,
		   const char *val, size_t vlen)
{
	char *s = malloc(nlen + vlen + 2);

	if (!s)
		return -ENOMEM;
	memcpy(s, name, nlen);
	s[nlen] = '=';
	memcpy(s + nlen + 1, val, vlen);
	s[nlen + vlen + 1] = 0;
	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*v)[i], s, nlen + 1) == 0) {
			free((*v)[i]);
			(*v)[i] = s;
			return 0;
		}
	}
	return strv_push(v, n, s);
}

static const char *env_get(char **v, const char *name)
{
	size_t n = strlen(name);

	for (; v && *v; v++)
		if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
			return *v + n + 1;
	return NULL;
}

/* Finds prog along the PATH of envp: true with its path in buf. */
static bool path_lookup(const char *prog, char **envp, char *buf, size_t size)
{
	const char *path = env_get(envp, "PATH");

	if (!path)
		path = DEFAULT_PATH;
	while (*path) {
		size_t len = strcspn(path, ":");

		if (snprintf(buf, size, "%.*s/%s", (int)len, len ? path : ".", prog) < (int)size &&
		    access(buf, X_OK) == 0)
			return true;
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

/* Resolves argv[0] along PATH in the parent (no allocation after fork). */
static int resolve(struct req *r, struct cmd *cmd)
{
	const char *prog = cmd->argv[0];
	char buf[PATH_MAX];

	if (cmd->path) /* a plain shell command: sh_run_direct found it */
		return 0;
	if (!prog[0])
		return invalid(r, "empty program name");
	if (strchr(prog, '/')) {
		cmd->path = strdup(prog);
		return cmd->path ? 0 : fail(r, ENOMEM, "out of memory");
	}
	if (path_lookup(prog, cmd->envp, buf, sizeof(buf))) {
		cmd->path = strdup(buf);
		return cmd->path ? 0 : fail(r, ENOMEM, "out of memory");
	}
	return fail(r, ENOENT, "%s: command not found", prog);
}

/* The shell's builtins and reserved words: `exec` would not run them. */
static bool sh_builtin(const char *w, size_t n)
{
	static const char *const names[] = {
		".", ":", "[", "[[", "alias", "bg", "break", "case", "cd", "chdir", "command",
		"continue", "do", "done", "echo", "elif", "else", "esac", "eval", "exec",
		"exit", "export", "false", "fg", "fi", "for", "function", "getopts", "hash",
		"help", "history", "if", "in", "jobs", "kill", "let", "local", "printf", "pwd",
		"read", "readonly", "return", "select", "set", "shift", "source", "test", "then",
		"time", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset",
		"until", "wait", "while",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !memcmp(names[i], w, n))
			return true;
	return false;
}

/* busybox ash, the guest's /bin/sh, ignores SIGQUIT for as long as it runs, and
 * when it execs the last command of `sh -c` in place (no fork) that command keeps
 * the ignore. Even `sh -c 'exec CMD'` leaves a window: a QUIT sent between the
 * shell's start and its exec is lost, and `p:signal("QUIT")` right after a spawn
 * lands in it. So a shell string that is one plain command of an existing program
 * (words of [A-Za-z0-9_./:=,+@%-], no quoting, expansion, redirection or operators,
 * not a builtin or an assignment) runs without a shell: its words are the argv, as
 * the shell would have split them, and the process is the program from the start.
 * The shell's own argv is kept for a program the kernel cannot exec: the shell runs
 * a script without #! (ENOEXEC) and reports any other failure as it always does
 * (a directory on PATH: 126). Anything else is left as
 * written; commands the shell forks get defaults from it anyway. */
static int sh_run_direct(struct cmd *cmd, size_t *nenv)
{
	const char *s = cmd->argv[2];
	char prog[256], buf[PATH_MAX], **argv = NULL, *script = NULL, *pwd = NULL;
	size_t n, nargv = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			      "0123456789_./:=,+@%- \t") != strlen(s))
		return 0;
	n = strcspn(s, " \t");
	if (n >= sizeof(prog) || memchr(s, '=', n) || sh_builtin(s, n))
		return 0;
	memcpy(prog, s, n);
	prog[n] = 0;
	if (strchr(prog, '/') ? (prog[0] != '/' || access(prog, X_OK) != 0)
			      : !path_lookup(prog, cmd->envp, buf, sizeof(buf)))
		return 0; /* the shell reports it as it always does */
	for (; *s; s += strspn(s, " \t")) {
		n = strcspn(s, " \t");
		if (strv_push(&argv, &nargv, strndup(s, n)) < 0)
			goto oom;
		s += n;
	}
	/* what the shell would have exported: PWD, the directory it starts in */
	if (cmd->has_cwd) {
		if (!(pwd = realpath(cmd->cwd, NULL)) && !(pwd = strdup(cmd->cwd)))
			goto oom;
		if (env_set(&cmd->envp, nenv, "PWD", 3, pwd, strlen(pwd)) < 0)
			goto oom;
		free(pwd);
		pwd = NULL;
	}
	if (asprintf(&script, "exec %s", cmd->argv[2]) < 0) {
		script = NULL;
		goto oom;
	}
	if (!(cmd->path = strdup(strchr(prog, '/') ? prog : buf))) {
		free(script);
		goto oom;
	}
	free(cmd->argv[2]);
	cmd->argv[2] = script;
	cmd->sh_argv = cmd->argv;
	cmd->argv = argv;
	return 0;
oom:
	free(pwd);
	free_strv(argv);
	return -ENOMEM;
}

int cmd_parse(struct req *r, struct cmd *cmd)
{
	const msgpack_object *argv = pv_map_get(r->args, "argv");
	const msgpack_object *env = pv_map_get(r->args, "env");
	const msgpack_object *user = pv_map_get(r->args, "user");
	size_t nargv = 0, nenv = 0;
	bool clear_env = false, shell = false;
	int64_t v;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	if (argv && argv->type != MSGPACK_OBJECT_NIL) {
		if (argv->type != MSGPACK_OBJECT_ARRAY || argv->via.array.size == 0)
			return invalid(r, "argv must be a non-empty array of strings");
		for (uint32_t i = 0; i < argv->via.array.size; i++) {
			char *s = NULL;
			const uint8_t *d;
			size_t n;
			const msgpack_object *o = &argv->via.array.ptr[i];

			if ((o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) ||
			    (o->type == MSGPACK_OBJECT_STR ? (d = (const uint8_t *)o->via.str.ptr, n = o->via.str.size)
							  : (d = (const uint8_t *)o->via.bin.ptr, n = o->via.bin.size),
			     memchr(d, 0, n))) {
				rc = invalid(r, "argv[%u] must be a string without NUL bytes", i + 1);
				goto err;
			}
			s = strndup((const char *)d, n);
			if (strv_push(&cmd->argv, &nargv, s) < 0) {
				rc = fail(r, ENOMEM, "out of memory");
				goto err;
			}
		}
	} else {
		char *sh = pv_map_strdup(r->args, "cmd");

		if (!sh)
			return invalid(r, "need 'cmd' (a shell string) or 'argv' (an array)");
		shell = true;
		if (strv_push(&cmd->argv, &nargv, strdup("/bin/sh")) < 0 ||
		    strv_push(&cmd->argv, &nargv, strdup("-c")) < 0 ||
		    strv_push(&cmd->argv, &nargv, sh) < 0) {
			rc = fail(r, ENOMEM, "out of memory");
			goto err;
		}
	}

	if ((rc = arg_bool_opt(r, "clear_env", &clear_env, false)) < 0)
		goto err;
	for (char **e = clear_env ? NULL : environ; e && *e; e++) {
		if (strv_push(&cmd->envp, &nenv, strdup(*e)) < 0) {
			rc = fail(r, ENOMEM, "out of memory");
			goto err;
		}
	}
	if (!cmd->envp && strv_push(&cmd->envp, &nenv, strdup("PATH=" DEFAULT_PATH)) < 0) {
		rc = fail(r, ENOMEM, "out of memory");
		goto err;
	}
	if (!env_get(cmd->envp, "PATH") &&
	    env_set(&cmd->envp, &nenv, "PATH", 4, DEFAULT_PATH, strlen(DEFAULT_PATH)) < 0) {
		rc = fail(r, ENOMEM, "out of memory");
		goto err;
	}

	/* user: a name or uid; sets uid, gid, HOME, USER, LOGNAME */
	if (user && user->type != MSGPACK_OBJECT_NIL) {
		char name[256], home[PATH_MAX], login[256];
		bool by_name = user->type == MSGPACK_OBJECT_STR;

		if (by_name) {
			if (pv_obj_strcpy(user, name, sizeof(name)) < 0) {
				rc = invalid(r, "bad user name");
				goto err;
			}
		} else if (pv_obj_int(user, &v) < 0 || v < 0 || v > UINT32_MAX) {
			rc = invalid(r, "user must be a name or a uid");
			goto err;
		}
		rc = lookup_user(by_name ? name : NULL, by_name ? 0 : (long)v, &cmd->uid,
				 &cmd->gid, home, sizeof(home), login, sizeof(login));
		if (rc < 0 && by_name) {
			rc = invalid(r, "unknown user '%s' (not in /etc/passwd)", name);
			goto err;
		}
		if (rc < 0) { /* a numeric uid without a passwd entry is fine */
			cmd->uid = (uid_t)v;
			cmd->gid = (gid_t)v;
		} else if (env_set(&cmd->envp, &nenv, "HOME", 4, home, strlen(home)) < 0 ||
			   env_set(&cmd->envp, &nenv, "USER", 4, login, strlen(login)) < 0 ||
			   env_set(&cmd->envp, &nenv, "LOGNAME", 7, login, strlen(login)) < 0) {
			rc = fail(r, ENOMEM, "out of memory");
			goto err;
		}
		cmd->set_ids = true;
	}
	if (pv_map_int(r->args, "uid", &v) == 0) {
		if (v < 0 || v > UINT32_MAX) {
			rc = invalid(r, "bad uid");
			goto err;
		}
		cmd->uid = (uid_t)v;
		if (!cmd->set_ids)
			cmd->gid = getgid();
		cmd->set_ids = true;
	}
	if (pv_map_int(r->args, "gid", &v) == 0) {
		if (v < 0 || v > UINT32_MAX) {
			rc = invalid(r, "bad gid");
			goto err;
		}
		if (!cmd->set_ids)
			cmd->uid = getuid();
		cmd->gid = (gid_t)v;
		cmd->set_ids = true;
	}

	if (env && env->type != MSGPACK_OBJECT_NIL) {
		if (env->type != MSGPACK_OBJECT_MAP) {
			rc = invalid(r, "env must be a map of strings");
			goto err;
		}
		for (uint32_t i = 0; i < env->via.map.size; i++) {
			const msgpack_object *k = &env->via.map.ptr[i].key;
			const msgpack_object *val = &env->via.map.ptr[i].val;

			if (k->type != MSGPACK_OBJECT_STR || val->type != MSGPACK_OBJECT_STR ||
			    !k->via.str.size || memchr(k->via.str.ptr, '=', k->via.str.size) ||
			    memchr(k->via.str.ptr, 0, k->via.str.size) ||
			    memchr(val->via.str.ptr, 0, val->via.str.size)) {
				rc = invalid(r, "env must map names to strings");
				goto err;
			}
			if (env_set(&cmd->envp, &nenv, k->via.str.ptr, k->via.str.size,
				    val->via.str.ptr, val->via.str.size) < 0) {
				rc = fail(r, ENOMEM, "out of memory");
				goto err;
			}
		}
	}

	rc = pv_map_strcpy(r->args, "cwd", cmd->cwd, sizeof(cmd->cwd));
	if (rc == 0)
		cmd->has_cwd = true;
	else if (rc != -ENOENT) {
		rc = invalid(r, "cwd must be a path");
		goto err;
	}
	rc = pv_map_bytes(r->args, "stdin", &cmd->stdin_data, &cmd->stdin_len);
	if (rc < 0 && rc != -ENOENT) {
		rc = invalid(r, "stdin must be a string");
		goto err;
	}
	if ((rc = pty_parse(r, cmd)) < 0)
		goto err;
	if (shell && sh_run_direct(cmd, &nenv) < 0) {
		rc = fail(r, ENOMEM, "out of memory");
		goto err;
	}
	if ((rc = resolve(r, cmd)) < 0)
		goto err;
	return 0;
err:
	cmd_free(cmd);
	return rc;
}

/* The kernel's struct sigaction (x86-64 and arm64 share this layout), for the raw
 * rt_sigaction below: glibc's sigaction() refuses signals 32 and 33, which it keeps
 * for its threads, so an ignored 32 would survive exec if we asked through it. */
struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

/* Every command starts with default dispositions and an empty mask, whatever the
 * agent inherited: /init starts it in the background, a shell ignores SIGINT and
 * SIGQUIT in background jobs, a CI runner may ignore anything, and ignored signals
 * survive exec. The agent blocks its termination signals and ignores SIGPIPE for
 * itself. Async-signal-safe: only raw system calls, after fork. */
static void reset_signals(void)
{
	struct ksigaction dfl = { .handler = SIG_DFL };
	unsigned long none = 0;

	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
}

/* The child side: never returns. Reports a failure as (stage, errno) on errfd. */
static void child(struct cmd *cmd, int in, int out, int err, int errfd)
{
	int report[2] = { 0, 0 };

	reset_signals();
	if (!cmd->pty)
		setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
	    (cmd->pty && pty_child() < 0)) {
		report[0] = 1;
		goto fail;
	}
	if (cmd->has_cwd && chdir(cmd->cwd) < 0) {
		report[0] = 2;
		goto fail;
	}
	if (cmd->set_ids) {
		if ((getuid() == 0 && setgroups(1, &cmd->gid) < 0) ||
		    setresgid(cmd->gid, cmd->gid, cmd->gid) < 0 ||
		    setresuid(cmd->uid, cmd->uid, cmd->uid) < 0) {
			report[0] = 3;
			goto fail;
		}
	}
	execve(cmd->path, cmd->argv, cmd->envp);
	if (cmd->sh_argv) /* the shell runs a script without #! and reports the rest */
		execve(cmd->sh_argv[0], cmd->sh_argv, cmd->envp);
	report[0] = 4;
fail:
	report[1] = errno;
	if (write(errfd, report, sizeof(report)) < 0) {
		/* the parent sees EOF and an exit status instead */
	}
	_exit(127);
}

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

struct proc *cmd_start(struct req *r, struct cmd *cmd, int *in_fd, int *out_fd,
		       int *err_fd)
{
	static const char *const stages[] = { "", "redirect", "chdir", "set user", "exec" };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 },
	    rep[2] = { -1, -1 }, report[2];
	struct proc *p = calloc(1, sizeof(*p));
	pid_t pid;
	ssize_t n;

	if (!p) {
		fail(r, ENOMEM, "out of memory");
		return NULL;
	}
	p->stdin_fd = -1;
	p->pty_fd = -1;
	p->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->owner = r->c;
	if (p->exit_fd < 0)
		goto sys_fail;
	if (cmd->pty) {
		/* The same shape as the pipes: the child's ends are the slave, ours the
		 * master (read: stdout; write: stdin); no separate stderr. */
		int e = pty_open(cmd, &out[0], &in[0]);

		if (e < 0) {
			errno = -e;
			goto sys_fail;
		}
		if ((in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 0)) < 0 ||
		    (p->pty_fd = fcntl(out[0], F_DUPFD_CLOEXEC, 0)) < 0 ||
		    (out[1] = fcntl(in[0], F_DUPFD_CLOEXEC, 0)) < 0 ||
		    (err[1] = fcntl(in[0], F_DUPFD_CLOEXEC, 0)) < 0 || pipe2(rep, O_CLOEXEC) < 0)
			goto sys_fail;
		if (!in_fd) {
			close(in[1]);
			in[1] = -1;
		}
	} else {
		if (pipe2(in, O_CLOEXEC) < 0)
			goto sys_fail;
		if (!in_fd) {
			/* No stdin: an empty pipe, already at EOF (works without /dev too). */
			close(in[1]);
			in[1] = -1;
		}
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
		    pipe2(rep, O_CLOEXEC) < 0)
			goto sys_fail;
	}

	pthread_mutex_lock(&procs_lock);
	pid = fork();
	if (pid == 0)
		child(cmd, in[0], out[1], err[1], rep[1]);
	if (pid < 0) {
		pthread_mutex_unlock(&procs_lock);
		goto sys_fail;
	}
	p->pid = pid;
	procs_insert_locked(p);
	pthread_mutex_unlock(&procs_lock);
	if (!cmd->pty) /* (a pty child makes its own session: setsid needs it not a leader) */
		setpgid(pid, pid); /* also in the child: whichever runs first */

	close(rep[1]);
	rep[1] = -1;
	do
		n = read(rep[0], report, sizeof(report));
	while (n < 0 && errno == EINTR);
	close_pair(rep);
	if (n == sizeof(report)) {
		fail(r, report[1], "%s %s: %s", stages[report[0] >= 1 && report[0] <= 4 ? report[0] : 4],
		     report[0] == 2 ? cmd->cwd : cmd->argv[0], strerror(report[1]));
		if (report[0] == 4 && cmd->argv[0][0] != '/' && report[1] == ENOENT)
			snprintf(r->msg, sizeof(r->msg), "%s: command not found",
				 cmd->argv[0]);
		proc_wait_exit(p, -1);
		proc_remove(p);
		proc_put(p);
		close_pair(in);
		close_pair(out);
		close_pair(err);
		return NULL;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (in_fd)
		*in_fd = in[1];
	*out_fd = out[0];
	*err_fd = err[0];
	return p;

sys_fail:
	fail(r, errno, "cannot start %s: %s", cmd->argv[0], strerror(errno));
	close_pair(in);
	close_pair(out);
	close_pair(err);
	close_pair(rep);
	if (p->exit_fd >= 0)
		close(p->exit_fd);
	if (p->pty_fd >= 0)
		close(p->pty_fd);
	free(p);
	return NULL;
}

/* Growable output buffer for one stream of an exec. */
struct obuf {
	uint8_t *d;
	size_t len, cap;
	int fd;
	const char *name;
};

static int obuf_read(struct req *r, struct obuf *o)
{
	for (;;) {
		ssize_t n;

		if (o->cap - o->len < 65536) {
			size_t cap = o->cap ? o->cap * 2 : 131072;
			uint8_t *nd = realloc(o->d, cap);

			if (!nd)
				return -ENOMEM;
			o->d = nd;
			o->cap = cap;
		}
		n = read(o->fd, o->d + o->len, o->cap - o->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0) {
			close(o->fd);
			o->fd = -1;
			return 0;
		}
		o->len += (size_t)n;
		/* Keep the reply within one frame: ship full chunks ahead of it. */
		while (o->len >= PV_PROTO_CHUNK) {
			if (conn_send_stream(r->c, r->id, o->name, o->d, PV_PROTO_CHUNK) < 0)
				return -EPIPE;
			memmove(o->d, o->d + PV_PROTO_CHUNK, o->len - PV_PROTO_CHUNK);
			o->len -= PV_PROTO_CHUNK;
		}
	}
}

int op_exec(struct req *r)
{
	struct obuf ob[2] = { { .fd = -1, .name = PV_STREAM_STDOUT },
			      { .fd = -1, .name = PV_STREAM_STDERR } };
	uint64_t start = mono_ns(), deadline = 0;
	int64_t timeout_ns;
	struct cmd cmd;
	struct proc *p;
	int in = -1, rc;
	size_t in_off = 0;
	bool timed_out = false, exited = false;
	enum proc_state state;
	int code, sig;
	struct pv_fbuf *b;

	if ((rc = arg_int_opt(r, "timeout_ns", &timeout_ns, 0)) < 0)
		return rc;
	if ((rc = cmd_parse(r, &cmd)) < 0)
		return rc;
	if (cmd.pty) {
		cmd_free(&cmd);
		return invalid(r, "exec has no pty: spawn it");
	}
	p = cmd_start(r, &cmd, cmd.stdin_len ? &in : NULL, &ob[0].fd, &ob[1].fd);
	if (!p) {
		cmd_free(&cmd);
		return -r->err;
	}
	for (int i = 0; i < 2; i++)
		fcntl(ob[i].fd, F_SETFL, O_NONBLOCK);
	if (in >= 0)
		fcntl(in, F_SETFL, O_NONBLOCK);
	if (timeout_ns > 0)
		deadline = start + (uint64_t)timeout_ns;

	/* Until the process exits, then until the pipes are drained; a grandchild that
	 * keeps a pipe open must not hold the reply: after exit, stop at the first
	 * quiet 20 ms. */
	while (ob[0].fd >= 0 || ob[1].fd >= 0 || !exited) {
		struct pollfd pf[4];
		int npf = 0, wait_ms = -1, n;
		uint64_t now = mono_ns();

		if (!exited) {
			pf[npf++] = (struct pollfd){ .fd = p->exit_fd, .events = POLLIN };
			if (deadline && !timed_out)
				wait_ms = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		} else {
			wait_ms = 20;
		}
		for (int i = 0; i < 2; i++)
			if (ob[i].fd >= 0)
				pf[npf++] = (struct pollfd){ .fd = ob[i].fd, .events = POLLIN };
		if (in >= 0)
			pf[npf++] = (struct pollfd){ .fd = in, .events = POLLOUT };
		n = poll(pf, (nfds_t)npf, wait_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && exited)
			break;
		if (!exited && deadline && !timed_out && mono_ns() >= deadline) {
			timed_out = true;
			kill(-p->pid, SIGKILL);
		}
		for (int i = 0; i < npf; i++) {
			if (!pf[i].revents)
				continue;
			if (pf[i].fd == p->exit_fd) {
				exited = true;
			} else if (pf[i].fd == in) {
				ssize_t w = write(in, cmd.stdin_data + in_off, cmd.stdin_len - in_off);

				if (w > 0)
					in_off += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
				    in_off == cmd.stdin_len) {
					close(in);
					in = -1;
				}
			} else {
				struct obuf *o = pf[i].fd == ob[0].fd ? &ob[0] : &ob[1];

				if (obuf_read(r, o) < 0) {
					/* the host went away or no memory: give up on the output */
					close(o->fd);
					o->fd = -1;
				}
			}
		}
	}
	if (in >= 0)
		close(in);
	for (int i = 0; i < 2; i++)
		if (ob[i].fd >= 0)
			close(ob[i].fd);

	proc_snapshot(p, &state, &code, &sig);
	b = reply_ok(r);
	pv_pack_map(b, 7);
	pv_pack_kv_int(b, "pid", p->pid);
	pv_pack_kv_int(b, "code", code);
	pv_pack_kv_int(b, "signal", sig);
	pv_pack_kv_bin(b, "stdout", ob[0].d, ob[0].len);
	pv_pack_kv_bin(b, "stderr", ob[1].d, ob[1].len);
	pv_pack_kv_uint(b, "duration_ns", mono_ns() - start);
	pv_pack_kv_bool(b, "timed_out", timed_out);
	rc = reply_send(r);
	free(ob[0].d);
	free(ob[1].d);
	proc_remove(p);
	proc_put(p);
	cmd_free(&cmd);
	return rc;
}
