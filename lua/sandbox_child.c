/* sandbox_child.c — the child side of lua/sandbox.c: what runs as PID 1 of a new
 * sandbox's namespaces before it execs /init (or the agent): console and agent fds,
 * PDEATHSIG, waiting for the user namespace's id maps, the private root (overlayfs
 * over the rootfs on a scratch tmpfs, /proc /sys /dev /dev/pts /dev/shm /tmp /run,
 * pivot_root), hostname and loopback. Errors go back to the parent on the error pipe
 * as "step: error" (sandbox_child_fail). Split from sandbox.c, which keeps the
 * parent side (clone, console ring, kill, keep, connect). */
#include "lua/sandbox_int.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Reports "step: error" on the error pipe and exits; the parent turns it into pv_error. */
void sandbox_child_fail(int errfd, const char *step)
{
	char msg[512];
	int e = errno;
	int n = snprintf(msg, sizeof(msg), "%s: %s", step, strerror(e));
	if (n > 0 && write(errfd, msg, (size_t)PV_MIN(n, (int)sizeof(msg) - 1)) < 0)
		_exit(126);
	_exit(127);
}

static int mkdirs(const char *root, const char *const *dirs)
{
	char p[PATH_MAX];
	for (; *dirs; dirs++) {
		snprintf(p, sizeof(p), "%s/%s", root, *dirs);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* Device nodes: mknod as root; bind the host's node when mknod is not allowed. */
static int make_devs(const char *dev)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
		{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
		{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	};
	char p[256], host[64];
	for (size_t i = 0; i < PV_ARRAY_SIZE(nodes); i++) {
		snprintf(p, sizeof(p), "%s/%s", dev, nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) == 0) {
			chmod(p, 0666);
			continue;
		}
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			return -1;
		close(fd);
		snprintf(host, sizeof(host), "/dev/%s", nodes[i].name);
		if (mount(host, p, NULL, MS_BIND, NULL) < 0)
			return -1;
	}
	static const char *links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	};
	for (size_t i = 0; i < PV_ARRAY_SIZE(links); i++) {
		snprintf(p, sizeof(p), "%s/%s", dev, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			return -1;
	}
	return 0;
}

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

void sandbox_child_main(struct child_args *a)
{
	int errfd = fcntl(a->errfd, F_DUPFD_CLOEXEC, 100);
	if (errfd < 0)
		_exit(127);
	/* stdin/stdout/stderr = console; fd 3 = the agent's socket; nothing else leaks */
	if (dup2(a->con_in, 0) < 0 || dup2(a->con_out, 1) < 0 || dup2(a->con_out, 2) < 0)
		sandbox_child_fail(errfd, "dup2 console");
	if (a->agent_fd == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			sandbox_child_fail(errfd, "agent fd");
	} else if (dup2(a->agent_fd, 3) < 0) {
		sandbox_child_fail(errfd, "dup2 agent fd");
	}
	if (syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		sandbox_child_fail(errfd, "close_range");
	/* keepable (--keep): no PDEATHSIG, so a keeper can hold the sandbox after the worker
	 * exits; if the worker dies first, the agent's socket closes and /init exits. */
	if (!a->cfg->keepable)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The parent may have died before PDEATHSIG was set: it holds the only read end of
	 * the error pipe until we exec, so a pipe without readers means it is gone. */
	close(a->errrd);
	struct pollfd pfd = {.fd = errfd, .events = POLLOUT};
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
		_exit(1);
	setsid();
	if (a->userns) {
		char c;
		close(a->go_wr);
		if (read(a->go_rd, &c, 1) != 1)
			sandbox_child_fail(errfd, "wait for the user namespace's id maps");
		close(a->go_rd);
	}

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		sandbox_child_fail(errfd, "make / private");
	int lowfd = open(a->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lowfd < 0)
		sandbox_child_fail(errfd, "open rootfs");
	/* Scratch tmpfs (upper + work + mount point) on /tmp, visible only in this
	 * namespace; the rootfs is reached through its fd even if it lives under /tmp. */
	if (mount("provium-sandbox", "/tmp", "tmpfs", 0, "mode=0755") < 0)
		sandbox_child_fail(errfd, "mount scratch tmpfs");
	static const char *scratch[] = {"u", "w", "m", NULL};
	if (mkdirs("/tmp", scratch) < 0)
		sandbox_child_fail(errfd, "mkdir scratch");
	char opts[256];
	snprintf(opts, sizeof(opts), "lowerdir=/proc/self/fd/%d,upperdir=/tmp/u,workdir=/tmp/w",
		 lowfd);
	if (mount("overlay", "/tmp/m", "overlay", 0, opts) < 0)
		sandbox_child_fail(errfd, "mount overlay on rootfs");
	close(lowfd);
	const char *m = "/tmp/m";
	static const char *dirs[] = {"proc", "sys", "dev", "tmp", "run", "root", "etc", NULL};
	if (mkdirs(m, dirs) < 0)
		sandbox_child_fail(errfd, "mkdir in root");
	char p[64];
	snprintf(p, sizeof(p), "%s/proc", m);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		sandbox_child_fail(errfd, "mount /proc");
	snprintf(p, sizeof(p), "%s/sys", m);
	if (mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		sandbox_child_fail(errfd, "mount /sys");
	snprintf(p, sizeof(p), "%s/dev", m);
	if (mount("dev", p, "tmpfs", MS_NOSUID, "mode=0755,size=1m") < 0)
		sandbox_child_fail(errfd, "mount /dev");
	static const char *devdirs[] = {"dev/pts", "dev/shm", NULL};
	if (mkdirs(m, devdirs) < 0 || make_devs(p) < 0)
		sandbox_child_fail(errfd, "populate /dev");
	snprintf(p, sizeof(p), "%s/dev/pts", m);
	if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
		sandbox_child_fail(errfd, "mount /dev/pts");
	snprintf(p, sizeof(p), "%s/dev/shm", m);
	if (mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		sandbox_child_fail(errfd, "mount /dev/shm");
	snprintf(p, sizeof(p), "%s/tmp", m);
	if (mount("tmp", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		sandbox_child_fail(errfd, "mount /tmp");
	snprintf(p, sizeof(p), "%s/run", m);
	if (mount("run", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		sandbox_child_fail(errfd, "mount /run");

	if (chdir(m) < 0)
		sandbox_child_fail(errfd, "chdir new root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		sandbox_child_fail(errfd, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		sandbox_child_fail(errfd, "detach old root");
	if (chdir("/") < 0)
		sandbox_child_fail(errfd, "chdir /");

	const char *name = a->cfg->name ? a->cfg->name : "sandbox";
	if (sethostname(name, strlen(name)) < 0)
		sandbox_child_fail(errfd, "sethostname");
	lo_up();

	char *envp[64];
	size_t ne = 0;
	char hostenv[128];
	snprintf(hostenv, sizeof(hostenv), "HOSTNAME=%s", name);
	envp[ne++] = "PROVIUM_SANDBOX=1";
	envp[ne++] = "PROVIUM_AGENT_FD=3";
	envp[ne++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	envp[ne++] = "HOME=/root";
	envp[ne++] = "TERM=dumb";
	envp[ne++] = hostenv;
	for (const char *const *e = a->cfg->env; e && *e && ne < PV_ARRAY_SIZE(envp) - 1; e++)
		envp[ne++] = (char *)*e;
	envp[ne] = NULL;

	if (!a->cfg->no_init && access("/init", X_OK) == 0) {
		char *argv[] = {"/init", NULL};
		execve("/init", argv, envp);
		sandbox_child_fail(errfd, "exec /init");
	}
	char *argv[] = {"provium-agent", "--fd", "3", NULL};
	execve("/bin/provium-agent", argv, envp);
	sandbox_child_fail(errfd, "exec /bin/provium-agent (the rootfs has no /init)");
}
