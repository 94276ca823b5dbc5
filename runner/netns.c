/* netns.c — the run's network namespace (runner/netns.h): named by the parent,
 * created by the first worker that needs it, removed by the parent at exit. */
#include "runner/netns.h"
#include "runner/kept.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <netlink/route/link.h>

static char run_name[64];
static char run_tag[8];
static int run_fd = -1;

const char *netns_run_name(void)
{
	return run_name;
}

const char *netns_run_tag(void)
{
	if (!run_tag[0]) {
		const char *n = getenv(NETNS_ENV);
		const char *dash = n ? strrchr(n, '-') : NULL;
		if (dash && strlen(dash + 1) == 4)
			snprintf(run_tag, sizeof(run_tag), "%s", dash + 1);
		else
			snprintf(run_tag, sizeof(run_tag), "%04x", (unsigned)getpid() & 0xffff);
	}
	return run_tag;
}

int netns_enter(int nsfd)
{
	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return pv_error(errno, "open own netns: %s", strerror(errno));
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		int e = errno;
		close(saved);
		return pv_error(e, "setns into the network namespace: %s", strerror(e));
	}
	return saved;
}

void netns_leave(int saved)
{
	if (saved < 0)
		return;
	if (setns(saved, CLONE_NEWNET) < 0)
		pv_log("netns: cannot switch back to the original namespace: %s", strerror(errno));
	close(saved);
}

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0) {
		/* best effort: IPv6 may be absent */
	}
	close(fd);
}

/* In the new namespace: lo up, forwarding on (only here), no IPv6 chatter. */
static void configure_new_ns(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct ifreq ifr = {0};
		strcpy(ifr.ifr_name, "lo");
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	write_file("/proc/sys/net/ipv4/ip_forward", "1");
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
}

/* Makes a new namespace on this thread; returns its fd; optionally bind-mounts it
 * on `path`. The thread is back in its own namespace afterwards. */
static int create_ns(const char *path)
{
	int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0)
		return pv_error(errno, "open own netns: %s", strerror(errno));
	int ret;
	if (unshare(CLONE_NEWNET) < 0) {
		ret = pv_error(errno, "unshare(CLONE_NEWNET): %s%s", strerror(errno),
			       errno == EPERM ? " (needs root or CAP_SYS_ADMIN)" : "");
		close(saved);
		return ret;
	}
	configure_new_ns();
	ret = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ret < 0)
		ret = pv_error(errno, "open new netns: %s", strerror(errno));
	if (ret >= 0 && path) {
		int f = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
		if (f >= 0)
			close(f);
		if (f < 0 || mount("/proc/thread-self/ns/net", path, NULL, MS_BIND, NULL) < 0) {
			int e = errno;
			unlink(path);
			close(ret);
			ret = pv_error(e, "bind-mount the namespace on %s: %s", path, strerror(e));
		}
	}
	if (setns(saved, CLONE_NEWNET) < 0)
		pv_log("netns: cannot switch back to the original namespace: %s", strerror(errno));
	close(saved);
	return ret;
}

static bool is_nsfs(int fd)
{
	struct statfs st;
	/* a bind-mounted namespace is on nsfs; a leftover plain file is not */
	return fstatfs(fd, &st) == 0 && st.f_type == NSFS_MAGIC;
}

int netns_open_run(void)
{
	if (run_fd >= 0)
		return run_fd;
	const char *name = getenv(NETNS_ENV);
	if (!name || !*name) {
		run_name[0] = 0;
		int fd = create_ns(NULL);
		if (fd >= 0)
			run_fd = fd;
		return fd;
	}
	snprintf(run_name, sizeof(run_name), "%s", name);
	if (mkdir(NETNS_DIR, 0755) < 0 && errno != EEXIST)
		return pv_error(errno, "mkdir %s: %s", NETNS_DIR, strerror(errno));
	char path[320];
	snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
	/* the directory is the lock: parallel workers create the namespace once */
	int lfd = open(NETNS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0)
		return pv_error(errno, "open %s: %s", NETNS_DIR, strerror(errno));
	while (flock(lfd, LOCK_EX) < 0 && errno == EINTR)
		;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && !is_nsfs(fd)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fd = create_ns(path);
	close(lfd);
	if (fd >= 0)
		run_fd = fd;
	return fd;
}

/* Deletes host links named pvh<tag>* (tag NULL: every pvh link whose run is gone is
 * decided by the caller). */
static void delete_host_links(const char *tag)
{
	char prefix[16];
	snprintf(prefix, sizeof(prefix), NETNS_HOST_PREFIX "%s", tag);
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return;
	struct nl_cache *cache = NULL;
	if (nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0)
		goto out;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *n = rtnl_link_get_name(l);
		if (n && !strncmp(n, prefix, strlen(prefix)))
			rtnl_link_delete(sk, l);
	}
out:
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
}

static void remove_named(const char *name)
{
	char path[320];
	snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
	for (int i = 0; i < 8 && umount2(path, MNT_DETACH) == 0; i++)
		; /* stacked mounts, if any */
	unlink(path);
}

/* A kept kvm VM's bridges are in the namespace of its run, whose parent is gone: it
 * stays until the VM goes (runner/kept.c). */
static bool kept_in(const char *name)
{
	struct pv_kept *v;
	size_t n;
	bool in = false;

	if (pv_kept_list(&v, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		in |= !strcmp(v[i].netns, name);
	free(v);
	return in;
}

void netns_remove(const char *name)
{
	unsigned pid;
	char tag[8];

	if (sscanf(name, "provium-%u-%4[0-9a-f]", &pid, tag) != 2)
		return;
	delete_host_links(tag);
	remove_named(name);
}

int netns_sweep_stale(void)
{
	DIR *d = opendir(NETNS_DIR);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned pid;
		char tag[8];
		if (sscanf(e->d_name, "provium-%u-%4[0-9a-f]", &pid, tag) != 2)
			continue;
		if ((kill((pid_t)pid, 0) == 0 || errno != ESRCH) || kept_in(e->d_name))
			continue;
		delete_host_links(tag);
		remove_named(e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

int netns_run_init(void)
{
	unsigned r = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = (unsigned)pv_now_ns();
	if (fd >= 0)
		close(fd);
	snprintf(run_tag, sizeof(run_tag), "%04x", r & 0xffff);
	snprintf(run_name, sizeof(run_name), "provium-%d-%s", (int)getpid(), run_tag);
	netns_sweep_stale();
	return setenv(NETNS_ENV, run_name, 1) < 0 ? -errno : 0;
}

void netns_run_cleanup(void)
{
	if (!run_name[0])
		return;
	delete_host_links(run_tag);
	remove_named(run_name);
}
