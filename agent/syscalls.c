/* syscalls.c — `vm:syscall(name, ...)`: every name in API.md's Syscalls list, with
 * positional args; the result is the call's return value (uname: a table) or its
 * errno. Also signal-name parsing shared with proc_signal. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static const struct { const char *name; int sig; } signames[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "PWR", SIGPWR }, { "SYS", SIGSYS },
};

int parse_signal(const msgpack_object *o)
{
	char name[16];
	const char *n = name;
	int64_t v;

	if (pv_obj_int(o, &v) == 0)
		return v >= 0 && v < 65 ? (int)v : -EINVAL;
	if (pv_obj_strcpy(o, name, sizeof(name)) < 0)
		return -EINVAL;
	if (!strncmp(n, "SIG", 3))
		n += 3;
	for (size_t i = 0; i < PV_ARRAY_COUNT(signames); i++)
		if (!strcmp(signames[i].name, n))
			return signames[i].sig;
	return -EINVAL;
}

/* Positional args of a syscall request. */
struct sargs {
	struct req *r;
	const char *name;
	const msgpack_object *a;
	uint32_t n;
};

static const msgpack_object *sarg(struct sargs *s, uint32_t i)
{
	return i < s->n && s->a[i].type != MSGPACK_OBJECT_NIL ? &s->a[i] : NULL;
}

static int sarg_str(struct sargs *s, uint32_t i, char *buf, size_t size)
{
	const msgpack_object *o = sarg(s, i);

	if (!o || pv_obj_strcpy(o, buf, size) < 0)
		return invalid(s->r, "%s: argument %u must be a string", s->name, i + 1);
	return 0;
}

static int sarg_int(struct sargs *s, uint32_t i, int64_t *v)
{
	const msgpack_object *o = sarg(s, i);

	if (!o || pv_obj_int(o, v) < 0)
		return invalid(s->r, "%s: argument %u must be an integer", s->name, i + 1);
	return 0;
}

static int reply_ret(struct req *r, int64_t ret)
{
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_int(&r->fb, "ret", ret);
	return reply_send(r);
}

static int sys_err(struct sargs *s, const char *what)
{
	int e = errno;

	return fail(s->r, e, "%s%s%s: %s", s->name, what ? " " : "", what ? what : "",
		    strerror(e));
}

/* "ro,nosuid" -> MS_RDONLY|MS_NOSUID, or an integer. */
static int mount_flags(struct sargs *s, uint32_t i, unsigned long *flags)
{
	static const struct { const char *name; unsigned long flag; } names[] = {
		{ "ro", MS_RDONLY }, { "rdonly", MS_RDONLY }, { "nosuid", MS_NOSUID },
		{ "nodev", MS_NODEV }, { "noexec", MS_NOEXEC }, { "sync", MS_SYNCHRONOUS },
		{ "remount", MS_REMOUNT }, { "bind", MS_BIND }, { "rec", MS_REC },
		{ "private", MS_PRIVATE }, { "shared", MS_SHARED }, { "slave", MS_SLAVE },
		{ "noatime", MS_NOATIME }, { "relatime", MS_RELATIME }, { "move", MS_MOVE },
	};
	const msgpack_object *o = sarg(s, i);
	char buf[256], *save = NULL;
	int64_t v;

	*flags = 0;
	if (!o)
		return 0;
	if (pv_obj_int(o, &v) == 0) {
		*flags = (unsigned long)v;
		return 0;
	}
	if (pv_obj_strcpy(o, buf, sizeof(buf)) < 0)
		return invalid(s->r, "mount: flags must be an integer or a comma list");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t k;

		for (k = 0; k < PV_ARRAY_COUNT(names); k++)
			if (!strcmp(names[k].name, t))
				break;
		if (k == PV_ARRAY_COUNT(names))
			return invalid(s->r, "mount: unknown flag '%s'", t);
		*flags |= names[k].flag;
	}
	return 0;
}

static int sc_mount(struct sargs *s)
{
	char src[PATH_MAX], dst[PATH_MAX], type[64], data[1024] = "";
	unsigned long flags;
	int rc;

	if ((rc = sarg_str(s, 0, src, sizeof(src))) < 0 ||
	    (rc = sarg_str(s, 1, dst, sizeof(dst))) < 0)
		return rc;
	type[0] = 0;
	if (sarg(s, 2) && (rc = sarg_str(s, 2, type, sizeof(type))) < 0)
		return rc;
	if ((rc = mount_flags(s, 3, &flags)) < 0)
		return rc;
	if (sarg(s, 4) && (rc = sarg_str(s, 4, data, sizeof(data))) < 0)
		return rc;
	if (mount(src, dst, type[0] ? type : NULL, flags, data[0] ? data : NULL) < 0)
		return sys_err(s, dst);
	return reply_ret(s->r, 0);
}

static int sc_reboot(struct sargs *s)
{
	static const struct { const char *name; unsigned int cmd; } cmds[] = {
		{ "poweroff", RB_POWER_OFF }, { "power_off", RB_POWER_OFF },
		{ "restart", RB_AUTOBOOT }, { "halt", RB_HALT_SYSTEM },
		{ "cad_on", RB_ENABLE_CAD }, { "cad_off", RB_DISABLE_CAD },
	};
	char name[16];
	unsigned int cmd = 0;
	bool found = false;
	int rc;

	if ((rc = sarg_str(s, 0, name, sizeof(name))) < 0)
		return rc;
	for (size_t i = 0; i < PV_ARRAY_COUNT(cmds); i++)
		if (!strcmp(cmds[i].name, name))
			cmd = cmds[i].cmd, found = true;
	if (!found)
		return invalid(s->r, "reboot: unknown command '%s'", name);
	/* A host agent that is not a namespace init must never reboot the host. */
	if (getpid() != 1 && !agent_allow_reboot)
		return fail(s->r, EPERM,
			    "reboot refused: the agent is not PID 1 and has no --allow-reboot");
	if (cmd == RB_POWER_OFF || cmd == RB_AUTOBOOT || cmd == RB_HALT_SYSTEM) {
		/* Reply first: the call does not return. */
		reply_ret(s->r, 0);
		sync();
		reboot((int)cmd);
		return fail(s->r, errno, "reboot: %s", strerror(errno));
	}
	if (reboot((int)cmd) < 0)
		return sys_err(s, NULL);
	return reply_ret(s->r, 0);
}

int op_syscall(struct req *r)
{
	const msgpack_object *args = pv_map_get(r->args, "args");
	struct sargs s = { .r = r };
	char name[32], p1[PATH_MAX], p2[PATH_MAX];
	int64_t v1, v2;
	int rc;

	if ((rc = arg_str(r, "name", name, sizeof(name))) < 0)
		return rc;
	s.name = name;
	if (args && args->type == MSGPACK_OBJECT_ARRAY) {
		s.a = args->via.array.ptr;
		s.n = args->via.array.size;
	} else if (args && args->type != MSGPACK_OBJECT_NIL) {
		return invalid(r, "syscall args must be an array");
	}

	if (!strcmp(name, "sync")) {
		sync();
		return reply_ret(r, 0);
	} else if (!strcmp(name, "getpid")) {
		return reply_ret(r, getpid());
	} else if (!strcmp(name, "uname")) {
		return op_uname(r);
	} else if (!strcmp(name, "fsync")) {
		int fd;

		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0)
			return rc;
		if ((fd = open(p1, O_RDONLY | O_CLOEXEC)) < 0)
			return sys_err(&s, p1);
		rc = fsync(fd);
		close(fd);
		return rc < 0 ? sys_err(&s, p1) : reply_ret(r, 0);
	} else if (!strcmp(name, "kill")) {
		int sig;

		if ((rc = sarg_int(&s, 0, &v1)) < 0)
			return rc;
		if (!sarg(&s, 1) || (sig = parse_signal(sarg(&s, 1))) < 0)
			return invalid(r, "kill: argument 2 must be a signal number or name");
		if (kill((pid_t)v1, sig) < 0)
			return sys_err(&s, NULL);
		return reply_ret(r, 0);
	} else if (!strcmp(name, "mount")) {
		return sc_mount(&s);
	} else if (!strcmp(name, "umount")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0)
			return rc;
		v1 = 0;
		if (sarg(&s, 1) && (rc = sarg_int(&s, 1, &v1)) < 0)
			return rc;
		if (umount2(p1, (int)v1) < 0)
			return sys_err(&s, p1);
		return reply_ret(r, 0);
	} else if (!strcmp(name, "unlink")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0)
			return rc;
		return unlink(p1) < 0 ? sys_err(&s, p1) : reply_ret(r, 0);
	} else if (!strcmp(name, "rename")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0 ||
		    (rc = sarg_str(&s, 1, p2, sizeof(p2))) < 0)
			return rc;
		return rename(p1, p2) < 0 ? sys_err(&s, p1) : reply_ret(r, 0);
	} else if (!strcmp(name, "truncate")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0 ||
		    (rc = sarg_int(&s, 1, &v2)) < 0)
			return rc;
		return truncate(p1, v2) < 0 ? sys_err(&s, p1) : reply_ret(r, 0);
	} else if (!strcmp(name, "chmod")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0 ||
		    (rc = sarg_int(&s, 1, &v2)) < 0)
			return rc;
		return chmod(p1, (mode_t)v2) < 0 ? sys_err(&s, p1) : reply_ret(r, 0);
	} else if (!strcmp(name, "sethostname")) {
		if ((rc = sarg_str(&s, 0, p1, sizeof(p1))) < 0)
			return rc;
		return sethostname(p1, strlen(p1)) < 0 ? sys_err(&s, NULL) : reply_ret(r, 0);
	} else if (!strcmp(name, "reboot")) {
		return sc_reboot(&s);
	} else if (!strcmp(name, "drop_caches")) {
		char lv[8];
		int fd;

		v1 = 3;
		if (sarg(&s, 0) && (rc = sarg_int(&s, 0, &v1)) < 0)
			return rc;
		if (v1 < 1 || v1 > 3)
			return invalid(r, "drop_caches: level must be 1, 2 or 3");
		sync();
		snprintf(lv, sizeof(lv), "%d\n", (int)v1);
		fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, lv, strlen(lv)) < 0) {
			rc = sys_err(&s, NULL);
			if (fd >= 0)
				close(fd);
			return rc;
		}
		close(fd);
		return reply_ret(r, 0);
	}
	return invalid(r, "unknown syscall name '%s'", name);
}
