/* sandbox.c — the sandbox backend (see sandbox.h): clone into new namespaces, build a
 * private root from the rootfs directory with overlayfs, exec /init (or the agent) as
 * PID 1, and keep its console in a ring buffer. This file is the parent side; the child's
 * setup up to the exec (the private root, mounts, /dev) is lua/sandbox_child.c. */
#include "lua/sandbox_int.h"
#include "runner/layout.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct sandbox {
	char *name;
	bool userns;          /* runs in its own user namespace */
	char *rootfs;
	pid_t pid;
	bool reaped;
	int status;
	int agent_fd;         /* host end of the socketpair */
	int con_in;           /* write end: the init's stdin */
	int con_out;          /* read end: the init's stdout+stderr */
	pthread_t reader;
	bool reader_started;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards ring, total, eof */
	char *ring;
	uint64_t total;       /* bytes ever written to the ring */
	bool eof;
	bool kept;            /* sandbox_keep(): outlives us, so kill leaves PID 1 alone */
};

/* ---- rootfs lookup ---- */

static bool is_dir(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *sandbox_default_rootfs(void)
{
	return layout_rootfs(); /* build/rootfs, or an install's lib/provium/rootfs */
}

/* ---- the child (PID 1 of the new namespaces): lua/sandbox_child.c ---- */

/* ---- console reader thread ---- */

static void ring_put(struct sandbox *sb, const char *buf, size_t n)
{
	pthread_mutex_lock(&sb->lock);
	if (n > SANDBOX_CONSOLE_SIZE) {
		sb->total += n - SANDBOX_CONSOLE_SIZE;
		buf += n - SANDBOX_CONSOLE_SIZE;
		n = SANDBOX_CONSOLE_SIZE;
	}
	size_t off = sb->total % SANDBOX_CONSOLE_SIZE;
	size_t first = PV_MIN(n, SANDBOX_CONSOLE_SIZE - off);
	memcpy(sb->ring + off, buf, first);
	memcpy(sb->ring, buf + first, n - first);
	sb->total += n;
	pthread_mutex_unlock(&sb->lock);
}

static void *console_reader(void *arg)
{
	struct sandbox *sb = arg;
	char buf[16384];
	while (!atomic_load(&sb->stop)) {
		struct pollfd pfd = {.fd = sb->con_out, .events = POLLIN};
		int r = poll(&pfd, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		ssize_t n = read(sb->con_out, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		ring_put(sb, buf, (size_t)n);
	}
	pthread_mutex_lock(&sb->lock);
	sb->eof = true;
	pthread_mutex_unlock(&sb->lock);
	return NULL;
}

/* ---- start / stop ---- */

static bool userns_broken;

static bool use_userns(void)
{
	const char *e = getenv("PROVIUM_SANDBOX_USERNS");
	if (e && !strcmp(e, "0"))
		return false;
	return !userns_broken;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = pv_write_full(fd, s, strlen(s));
	close(fd);
	return r;
}

/* Clones PID 1 of a new sandbox and waits until it exec'd. Returns 0, -EAGAIN when a
 * user namespace was asked for and did not work (retry without), or -errno with
 * pv_error set. */
static int clone_child(struct sandbox *sb, const struct sandbox_config *cfg,
		       const char *rootfs, bool userns, char *msg, size_t msgsize)
{
	const char *name = sb->name;
	int sv[2] = {-1, -1}, in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	int go[2] = {-1, -1};
	int ret = 0;
	msg[0] = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (userns && pipe2(go, O_CLOEXEC) < 0)) {
		ret = pv_error(errno, "sandbox %s: socketpair/pipe: %s", name, strerror(errno));
		goto out;
	}
	struct child_args ca = {.cfg = cfg, .rootfs = rootfs, .agent_fd = sv[1],
				.con_in = in[0], .con_out = outp[1], .errfd = errp[1],
				.errrd = errp[0], .go_rd = go[0], .go_wr = go[1], .userns = userns};
	unsigned long flags = SIGCHLD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
			      CLONE_NEWUTS | CLONE_NEWIPC | (userns ? CLONE_NEWUSER : 0);
	/* A fork-like clone (no new stack): the child sets up and execs right away. */
	long pid = syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		snprintf(msg, msgsize, "clone: %s", strerror(e));
		ret = userns ? -EAGAIN : pv_error(e, "sandbox %s: clone with new namespaces: %s%s",
						  name, strerror(e),
						  e == EPERM ? " (needs root or CAP_SYS_ADMIN)" : "");
		goto out;
	}
	if (pid == 0)
		sandbox_child_main(&ca);
	close(sv[1]);
	close(in[0]);
	close(outp[1]);
	close(errp[1]);
	sv[1] = in[0] = outp[1] = errp[1] = -1;
	if (userns) {
		/* identity maps of every id: files keep their owners, `user` exec works */
		char p[64];
		close(go[0]);
		go[0] = -1;
		snprintf(p, sizeof(p), "/proc/%ld/uid_map", pid);
		int r1 = write_str(p, "0 0 4294967295\n");
		snprintf(p, sizeof(p), "/proc/%ld/gid_map", pid);
		int r2 = write_str(p, "0 0 4294967295\n");
		if (r1 < 0 || r2 < 0 || write(go[1], "g", 1) != 1) {
			snprintf(msg, msgsize, "id maps: %s", strerror(r1 < 0 ? -r1 : r2 < 0 ? -r2 : errno));
			kill((pid_t)pid, SIGKILL);
			waitpid((pid_t)pid, NULL, 0);
			ret = -EAGAIN;
			goto out;
		}
	}
	/* The error pipe closes on exec (success) or carries the failed step. */
	size_t got = 0;
	for (;;) {
		ssize_t n = read(errp[0], msg + got, msgsize - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == msgsize - 1)
			break;
	}
	msg[got] = 0;
	if (got) {
		int st;
		waitpid((pid_t)pid, &st, 0);
		ret = userns ? -EAGAIN : pv_error(EIO, "sandbox %s: setup failed: %s", name, msg);
		goto out;
	}
	sb->pid = (pid_t)pid;
	sb->agent_fd = sv[0];
	sb->con_in = in[1];
	sb->con_out = outp[0];
	sv[0] = in[1] = outp[0] = -1;
out:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0) close(sv[i]);
		if (in[i] >= 0) close(in[i]);
		if (outp[i] >= 0) close(outp[i]);
		if (errp[i] >= 0) close(errp[i]);
		if (go[i] >= 0) close(go[i]);
	}
	return ret;
}

int sandbox_start(const struct sandbox_config *cfg, struct sandbox **out)
{
	const char *name = cfg->name ? cfg->name : "sandbox";
	const char *rootfs = cfg->rootfs ? cfg->rootfs : sandbox_default_rootfs();
	if (!rootfs)
		return pv_error(ENOENT, "sandbox %s: no rootfs: neither build/rootfs (run `make`) nor "
				"an install's lib/provium/rootfs is there next to %s, and $PROVIUM_ROOTFS "
				"is not set", name, layout_exe_dir());
	if (!is_dir(rootfs))
		return pv_error(ENOENT, "sandbox %s: rootfs %s is not a directory", name, rootfs);

	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return pv_error(ENOMEM, "sandbox %s: out of memory", name);
	sb->agent_fd = sb->con_in = sb->con_out = -1;
	sb->pid = -1;
	pthread_mutex_init(&sb->lock, NULL);
	sb->name = strdup(name);
	sb->rootfs = strdup(rootfs);
	sb->ring = malloc(SANDBOX_CONSOLE_SIZE);
	int ret;
	if (!sb->name || !sb->rootfs || !sb->ring) {
		ret = pv_error(ENOMEM, "sandbox %s: out of memory", name);
		goto fail;
	}
	/* A user namespace too when the host allows it (identity-mapped: root inside keeps
	 * its files but its capabilities stop at the sandbox, so it cannot change host-wide
	 * settings such as /proc/sys or the clock); without it if that fails. */
	bool userns = use_userns();
	char msg[512];
	ret = clone_child(sb, cfg, rootfs, userns, msg, sizeof(msg));
	if (ret == -EAGAIN) {
		char why[512];
		snprintf(why, sizeof(why), "%s", msg);
		userns = false;
		ret = clone_child(sb, cfg, rootfs, false, msg, sizeof(msg));
		if (ret == 0) {
			/* it was the user namespace: do not try it again in this process */
			userns_broken = true;
			pv_debug("sandbox %s: no user namespace (%s)", name, why);
		}
	}
	if (ret < 0)
		goto fail;
	sb->userns = userns;
	fcntl(sb->agent_fd, F_SETFL, fcntl(sb->agent_fd, F_GETFL) | O_NONBLOCK);
	fcntl(sb->con_in, F_SETFL, fcntl(sb->con_in, F_GETFL) | O_NONBLOCK);
	if ((ret = -pthread_create(&sb->reader, NULL, console_reader, sb)) < 0) {
		pv_error(-ret, "sandbox %s: console thread: %s", name, strerror(-ret));
		goto fail;
	}
	sb->reader_started = true;
	*out = sb;
	return 0;
fail:
	sandbox_free(sb);
	return ret;
}

bool sandbox_exited(struct sandbox *sb, int *status)
{
	if (!sb->reaped && sb->pid > 0) {
		int st;
		pid_t r = waitpid(sb->pid, &st, WNOHANG);
		if (r == sb->pid || (r < 0 && errno == ECHILD)) {
			sb->reaped = true;
			sb->status = r == sb->pid ? st : 0;
		}
	}
	if (sb->reaped && status)
		*status = sb->status;
	return sb->reaped;
}

/* The keeper (a child that outlives us): holds the agent socket and console input open
 * and drains the console, into console_path when there is one (`provium console`; cut
 * back to nothing past 4 MiB), until every writer is gone, i.e. until PID 1 died. Only
 * async-signal-safe calls: we may have other threads. */
static void keeper_main(const struct sandbox *sb, const char *console_path)
{
	int keep[3] = {sb->agent_fd, sb->con_in, sb->con_out};
	for (int i = 0; i < 3; i++) /* sort, for close_range between them */
		for (int j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	unsigned lo = 3;
	for (int i = 0; i < 3; i++) {
		if ((unsigned)keep[i] > lo)
			syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0U, 0);
	setsid();
	prctl(PR_SET_NAME, "provium-keep");
	int log = console_path ? open(console_path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	off_t logged = log >= 0 ? lseek(log, 0, SEEK_END) : 0;
	char buf[4096];
	for (;;) {
		ssize_t n = read(sb->con_out, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			_exit(0); /* the registry's next reader forgets the VM (runner/kept.c) */
		if (n > 0 && log >= 0) {
			if (logged + n > (4 << 20)) {
				if (ftruncate(log, 0) == 0)
					logged = 0;
			}
			if (write(log, buf, (size_t)n) == n)
				logged += n;
		}
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = sb->con_out, .events = POLLIN};
			poll(&pfd, 1, -1);
		}
	}
}

pid_t sandbox_keep(struct sandbox *sb, const char *console_path)
{
	if (!sb || sb->pid <= 0 || sb->reaped || sb->agent_fd < 0 || sb->con_out < 0)
		return pv_error(ESRCH, "sandbox %s: not running", sb ? sb->name : "?");
	if (console_path) {
		/* what the console said so far (the ring), then the keeper goes on */
		int fd = open(console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		uint64_t pos = 0;
		char buf[4096];
		size_t n;

		if (fd < 0)
			return pv_error(errno, "sandbox %s: %s: %s", sb->name, console_path,
					strerror(errno));
		while ((n = sandbox_console_read(sb, &pos, buf, sizeof(buf))) > 0)
			if (write(fd, buf, n) != (ssize_t)n)
				break;
		close(fd);
	}
	pid_t k = fork();
	if (k < 0)
		return pv_error(errno, "sandbox %s: fork keeper: %s", sb->name, strerror(errno));
	if (k == 0)
		keeper_main(sb, console_path);
	sb->kept = true;
	return k;
}

void sandbox_kill(struct sandbox *sb)
{
	if (!sb)
		return;
	if (sb->pid > 0 && !sb->reaped && !sb->kept) {
		kill(sb->pid, SIGCONT);
		kill(sb->pid, SIGKILL);
		int st;
		pid_t r;
		do
			r = waitpid(sb->pid, &st, 0);
		while (r < 0 && errno == EINTR);
		sb->reaped = true;
		sb->status = r == sb->pid ? st : 0;
	}
	if (sb->agent_fd >= 0) {
		close(sb->agent_fd);
		sb->agent_fd = -1;
	}
	if (sb->con_in >= 0) {
		close(sb->con_in);
		sb->con_in = -1;
	}
	if (sb->reader_started) {
		/* PID 1 reaped: every holder of the console pipe is gone, the reader sees EOF. */
		atomic_store(&sb->stop, true);
		pthread_join(sb->reader, NULL);
		sb->reader_started = false;
	}
	if (sb->con_out >= 0) {
		close(sb->con_out);
		sb->con_out = -1;
	}
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	sandbox_kill(sb);
	pthread_mutex_destroy(&sb->lock);
	free(sb->ring);
	free(sb->name);
	free(sb->rootfs);
	free(sb);
}

int sandbox_agent_fd(const struct sandbox *sb) { return sb->agent_fd; }
pid_t sandbox_pid(const struct sandbox *sb) { return sb->pid; }
const char *sandbox_rootfs(const struct sandbox *sb) { return sb->rootfs; }
bool sandbox_userns(const struct sandbox *sb) { return sb->userns; }

/* A Worker connection: a new agent process entered into the sandbox's namespaces
 * (setns into ipc/uts/net/pid/mnt of PID 1, then fork so the agent is inside the pid
 * namespace), serving one end of a fresh socketpair. It does not depend on the
 * sandbox's /init, dies with the namespace, and its stderr goes to the console. */
int sandbox_connect(struct sandbox *sb)
{
	if (sb->reaped || sb->pid <= 0)
		return pv_error(ESRCH, "sandbox %s: not running", sb->name);
	return sandbox_connect_pid(sb->pid, sb->userns, sb->name);
}

int sandbox_connect_pid(pid_t pid1, bool userns, const char *name)
{
	/* the user namespace first: it owns the others */
	static const char *nsnames[] = {"user", "ipc", "uts", "net", "pid", "mnt"};
	int nsfd[6], sv[2] = {-1, -1}, errp[2] = {-1, -1}, con = -1, ret;
	char p[64];
	for (size_t i = 0; i < 6; i++)
		nsfd[i] = -1;
	for (size_t i = userns ? 0 : 1; i < 6; i++) {
		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid1, nsnames[i]);
		if ((nsfd[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
			ret = pv_error(errno, "sandbox %s: %s: %s", name, p, strerror(errno));
			goto out;
		}
	}
	snprintf(p, sizeof(p), "/proc/%d/fd/1", (int)pid1);
	con = open(p, O_WRONLY | O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		ret = pv_error(errno, "sandbox %s: socketpair: %s", name, strerror(errno));
		goto out;
	}
	pid_t helper = fork();
	if (helper < 0) {
		ret = pv_error(errno, "sandbox %s: fork: %s", name, strerror(errno));
		goto out;
	}
	if (helper == 0) {
		for (size_t i = 0; i < 6; i++)
			if (nsfd[i] >= 0 && setns(nsfd[i], 0) < 0)
				sandbox_child_fail(errp[1], "setns into the sandbox");
		pid_t agent = fork();
		if (agent < 0)
			sandbox_child_fail(errp[1], "fork in the sandbox");
		if (agent > 0)
			_exit(0);
		/* no PDEATHSIG here: the helper parent exits at once; the agent ends with its
		 * connection or with the sandbox's pid namespace */
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (con >= 0) {
			dup2(con, 1);
			dup2(con, 2);
		}
		if (dup2(sv[1], 3) < 0)
			sandbox_child_fail(errp[1], "dup2 agent fd");
		syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
		setsid();
		char *argv[] = {"provium-agent", "--fd", "3", NULL};
		char *envp[] = {"PROVIUM_SANDBOX=1",
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"HOME=/root", "TERM=dumb", NULL};
		execve("/bin/provium-agent", argv, envp);
		sandbox_child_fail(errp[1], "exec /bin/provium-agent in the sandbox");
	}
	close(errp[1]);
	errp[1] = -1;
	close(sv[1]);
	sv[1] = -1;
	int st;
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	char msg[512];
	ssize_t n;
	do
		n = read(errp[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		msg[n] = 0;
		ret = pv_error(EIO, "sandbox %s: worker agent: %s", name, msg);
		goto out;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	ret = sv[0];
	sv[0] = -1;
out:
	for (size_t i = 0; i < 6; i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (con >= 0)
		close(con);
	return ret;
}

/* ---- pause / resume: signal every process whose pid namespace is the sandbox's ---- */

static int signal_ns(struct sandbox *sb, int sig)
{
	if (sb->reaped || sb->pid <= 0)
		return pv_error(ESRCH, "sandbox %s: not running", sb->name);
	char p[64];
	struct stat ns;
	snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)sb->pid);
	if (stat(p, &ns) < 0)
		return pv_error(errno, "sandbox %s: %s: %s", sb->name, p, strerror(errno));
	/* Two passes: a process forked while the first pass ran gets the second. */
	for (int pass = 0; pass < 2; pass++) {
		DIR *d = opendir("/proc");
		if (!d)
			return pv_error(errno, "sandbox %s: /proc: %s", sb->name, strerror(errno));
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			if (*end || pid <= 0)
				continue;
			struct stat st;
			snprintf(p, sizeof(p), "/proc/%ld/ns/pid", pid);
			if (stat(p, &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev)
				kill((pid_t)pid, sig);
		}
		closedir(d);
	}
	return 0;
}

int sandbox_pause(struct sandbox *sb) { return signal_ns(sb, SIGSTOP); }
int sandbox_resume(struct sandbox *sb) { return signal_ns(sb, SIGCONT); }

/* ---- console ---- */

uint64_t sandbox_console_pos(struct sandbox *sb)
{
	pthread_mutex_lock(&sb->lock);
	uint64_t t = sb->total;
	pthread_mutex_unlock(&sb->lock);
	return t;
}

size_t sandbox_console_read(struct sandbox *sb, uint64_t *pos, char *buf, size_t n)
{
	pthread_mutex_lock(&sb->lock);
	uint64_t start = sb->total > SANDBOX_CONSOLE_SIZE ? sb->total - SANDBOX_CONSOLE_SIZE : 0;
	if (*pos < start)
		*pos = start;
	if (*pos > sb->total)
		*pos = sb->total;
	size_t avail = (size_t)(sb->total - *pos);
	size_t cnt = PV_MIN(avail, n);
	size_t off = *pos % SANDBOX_CONSOLE_SIZE;
	size_t first = PV_MIN(cnt, SANDBOX_CONSOLE_SIZE - off);
	memcpy(buf, sb->ring + off, first);
	memcpy(buf + first, sb->ring, cnt - first);
	*pos += cnt;
	pthread_mutex_unlock(&sb->lock);
	return cnt;
}

bool sandbox_console_eof(struct sandbox *sb)
{
	pthread_mutex_lock(&sb->lock);
	bool e = sb->eof;
	pthread_mutex_unlock(&sb->lock);
	return e;
}

ssize_t sandbox_console_write(struct sandbox *sb, const void *data, size_t len)
{
	if (sb->con_in < 0)
		return pv_error(EPIPE, "sandbox %s: console closed", sb->name);
	ssize_t n = write(sb->con_in, data, len);
	if (n < 0) {
		if (errno == EAGAIN)
			return 0;
		return pv_error(errno, "sandbox %s: console write: %s", sb->name, strerror(errno));
	}
	return n;
}
