/* kvm_keep.c — kept kvm VMs (`provium run --keep`, docs/debugging.md "Kept VMs"). A kvm
 * VM runs inside its worker (vCPU and device threads; its KVM fds are this process's),
 * so it cannot move to a keeper process as a sandbox does: the worker itself becomes
 * the holder. keep() records a VM in the registry (runner/kept.h: backend kvm, pid = the
 * worker), writes its console so far to DIR/KEY.console and listens on DIR/KEY.sock;
 * hold(), once the file's results are sent, tells the parent (k="detach"), leaves it
 * (channel, terminal, stdio, parent-death signal) and serves the VMs until none is left:
 * the console goes on into its file, a PV_KEPT_SHELL client gets a fresh vsock stream to
 * the guest agent (the fd itself, SCM_RIGHTS), PV_KEPT_KILL stops a VM and forgets it.
 * A VM that powers off is forgotten too; with the last one the holder removes its
 * run's temp dir and network namespace (through the registry) and exits. SIGTERM
 * ends them all the same way; after a SIGKILL the registry's readers clean up.
 * Exposed as provium._c_kvm_keep = {keep(sb, file, tmp, netns) -> listed, hold()}. */
#include "lua/kvm_int.h"
#include "lua/chan.h"
#include "lua/errors.h"
#include "devices/virtio_vsock.h"
#include "runner/kept.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define MAX_HELD 16
#define AGENT_PORT 1024
#define CONSOLE_MAX (4 << 20) /* the console file is cut back to nothing past this */

struct held {
	struct kvmvm *k;
	struct pv_kept e;
	int lfd;        /* listening on DIR/KEY.sock */
	int con;        /* DIR/KEY.console */
	uint64_t pos;   /* console ring position written so far */
	off_t logged;
	bool gone;
};

static struct held held[MAX_HELD];
static int nheld;
static volatile sig_atomic_t term;

static void on_term(int sig) { (void)sig; term = 1; }

/* The ring from h->pos on, into the console file. */
static void console_flush(struct held *h)
{
	char buf[4096];

	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&h->k->lock);
		uint64_t total = h->k->total, oldest = total > (1u << 20) ? total - (1u << 20) : 0;
		if (h->pos < oldest)
			h->pos = oldest;
		while (h->pos < total && n < sizeof(buf))
			buf[n++] = h->k->ring[h->pos++ % (1u << 20)];
		pthread_mutex_unlock(&h->k->lock);
		if (!n || h->con < 0)
			return;
		if (h->logged + (off_t)n > CONSOLE_MAX && ftruncate(h->con, 0) == 0)
			h->logged = 0;
		if (write(h->con, buf, n) == (ssize_t)n)
			h->logged += (off_t)n;
	}
}

static int listen_on(const char *path, const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return pv_error(ENAMETOOLONG, "kept VM %s: socket path %s is too long (set "
				"PROVIUM_KEPT_DIR to a shorter directory)", name, path);
	strcpy(a.sun_path, path);
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return pv_error(e, "kept VM %s: listen on %s: %s", name, path, strerror(e));
	}
	return fd;
}

/* provium._c_kvm_keep.keep(sb, file, tmp, netns) -> true: the running VM sb is kept
 * (registered, its console file and socket made); raises when it cannot be. */
static int l_keep(lua_State *L)
{
	struct kvmvm *k = pv_kvm_check(L, 1);
	const char *file = luaL_optstring(L, 2, ""), *tmp = luaL_optstring(L, 3, "");
	const char *netns = luaL_optstring(L, 4, "");
	char abs[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 200];
	struct timespec now;

	if (nheld == MAX_HELD)
		return pv_lua_error(L, "infra", "vm:keep", k->name, "%d VMs are kept already", MAX_HELD);
	if (!k->vm || !k->started || k->exited || !k->vsock)
		return pv_lua_error(L, "closed", "vm:keep", k->name, "the VM is not running");
	if (!pv_kept_dir(dir, sizeof(dir), true))
		return pv_lua_error(L, "infra", "vm:keep", k->name, "%s", pv_errmsg());
	struct held *h = &held[nheld];
	memset(h, 0, sizeof(*h));
	h->k = k;
	h->con = -1;
	clock_gettime(CLOCK_REALTIME, &now);
	h->e = (struct pv_kept){.pid = getpid(), .keeper = getpid(), .backend = "kvm",
				.starttime = pv_kept_starttime(getpid()),
				.since = (double)now.tv_sec + now.tv_nsec / 1e9};
	snprintf(h->e.name, sizeof(h->e.name), "%s", k->name);
	snprintf(h->e.file, sizeof(h->e.file), "%s", *file && realpath(file, abs) ? abs : file);
	snprintf(h->e.tmp, sizeof(h->e.tmp), "%s", tmp);
	snprintf(h->e.netns, sizeof(h->e.netns), "%s", netns);
	pv_kept_path(path, sizeof(path), dir, &h->e, "sock");
	if ((h->lfd = listen_on(path, k->name)) < 0)
		return pv_lua_error(L, "infra", "vm:keep", k->name, "%s", pv_errmsg());
	pv_kept_path(path, sizeof(path), dir, &h->e, "console");
	h->con = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pthread_mutex_lock(&k->lock);
	h->pos = k->boot_pos; /* this boot's console, as vm:console() shows it */
	pthread_mutex_unlock(&k->lock);
	console_flush(h);
	if (h->con < 0 || pv_kept_add(&h->e) < 0) {
		int e = errno;
		const char *why = h->con < 0 ? strerror(e) : pv_errmsg();
		close(h->lfd);
		if (h->con >= 0)
			close(h->con);
		pv_kept_remove(&h->e);
		return pv_lua_error(L, "infra", "vm:keep", k->name, "%s", why);
	}
	nheld++;
	lua_pushboolean(L, 1);
	return 1;
}

/* Out of the run: the parent no longer waits for us, and nothing of its terminal, its
 * pipes or its process tree holds us or is held by us. */
static void detach(void)
{
	struct sigaction sa = {.sa_handler = on_term};
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), tty;
	DIR *d;

	prctl(PR_SET_PDEATHSIG, 0); /* before the parent may exit */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	if ((tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) >= 0) {
		ioctl(tty, TIOCNOTTY); /* not its session leader: we only leave the terminal */
		close(tty);
	}
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	/* pipes and terminals we inherited (the caller's, e.g. $(provium run ...)): the
	 * VMs use none (eventfds, sockets, KVM and disk files) */
	if ((d = opendir("/proc/self/fd"))) {
		struct dirent *de;
		while ((de = readdir(d))) {
			int fd = atoi(de->d_name);
			struct stat st;
			if (fd > 2 && fd != dirfd(d) && fstat(fd, &st) == 0 &&
			    (S_ISFIFO(st.st_mode) || isatty(fd)))
				close(fd);
		}
		closedir(d);
	}
	if (chdir("/") < 0) {
		/* where we were is fine too */
	}
	prctl(PR_SET_NAME, "provium-hold");
}

static void forget(struct held *h)
{
	if (h->gone)
		return;
	h->gone = true;
	console_flush(h);
	close(h->lfd);
	if (h->con >= 0)
		close(h->con);
	pv_kept_remove(&h->e); /* the last one also takes the temp dir and namespace */
}

static void stop_vm(struct held *h)
{
	struct vm_exit ex;

	vm_stop(h->k->vm);
	vm_wait(h->k->vm, 5000, &ex);
	forget(h);
}

static void reply(int c, const char *msg, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec io = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};

	memset(&u, 0, sizeof(u));
	if (fd >= 0) {
		m.msg_control = u.b;
		m.msg_controllen = sizeof(u.b);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	sendmsg(c, &m, MSG_NOSIGNAL);
}

/* One client of h's socket: its command byte, our answer. */
static void serve(struct held *h)
{
	struct pollfd p;
	char cmd = 0, msg[300];
	int c = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	p = (struct pollfd){.fd = c, .events = POLLIN};
	if (poll(&p, 1, 2000) <= 0 || read(c, &cmd, 1) != 1) {
		close(c);
		return;
	}
	if (cmd == PV_KEPT_SHELL) {
		int fd = virtio_vsock_connect(h->k->vsock, AGENT_PORT, NULL);
		if (fd < 0) {
			snprintf(msg, sizeof(msg), "evsock port %d: %s", AGENT_PORT, pv_errmsg());
			reply(c, msg, -1);
		} else {
			reply(c, "o", fd);
			close(fd);
		}
	} else if (cmd == PV_KEPT_KILL) {
		stop_vm(h);
		reply(c, "o", -1);
	} else {
		reply(c, "eunknown request", -1);
	}
	close(c);
}

/* provium._c_kvm_keep.hold(): never returns (see the top of this file). */
static int l_hold(lua_State *L)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	bool ns = false;

	(void)L;
	for (int i = 0; i < nheld; i++)
		ns |= held[i].e.netns[0] != 0;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_str_with_body(&pk, "detach", 6);
	msgpack_pack_str_with_body(&pk, "netns", 5);
	if (ns)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	prctl(PR_SET_PDEATHSIG, 0); /* before the parent can see it and exit */
	if (pv_chan_fd() >= 0) {
		if (send(pv_chan_fd(), sb.data, sb.size, MSG_NOSIGNAL) < 0) {
			/* no parent to tell: it ends us (or has gone) anyway */
		}
		close(pv_chan_fd()); /* EOF: the parent is done with us */
		pv_chan_set_fd(-1);
	}
	msgpack_sbuffer_destroy(&sb);
	detach();
	for (;;) {
		struct pollfd p[MAX_HELD];
		int idx[MAX_HELD], n = 0;

		for (int i = 0; i < nheld; i++) {
			struct vm_exit ex;
			struct held *h = &held[i];
			if (h->gone)
				continue;
			console_flush(h);
			if (term)
				stop_vm(h);
			else if (vm_wait(h->k->vm, 0, &ex) == 0) /* powered off inside */
				forget(h);
			if (h->gone)
				continue;
			idx[n] = i;
			p[n++] = (struct pollfd){.fd = h->lfd, .events = POLLIN};
		}
		if (!n)
			_exit(0);
		if (poll(p, (nfds_t)n, 200) <= 0)
			continue;
		for (int j = 0; j < n; j++)
			if (p[j].revents)
				serve(&held[idx[j]]);
	}
}

int pv_luaopen_kvm_keep(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"keep", l_keep}, {"hold", l_hold}, {NULL, NULL}};

	lua_getglobal(L, "provium");
	if (lua_istable(L, -1)) {
		luaL_newlib(L, funcs);
		lua_setfield(L, -2, "_c_kvm_keep");
	}
	lua_pop(L, 1);
	return 0;
}
