/* bridge.c — bridges, TAPs, veths and addresses through libnl-route-3 inside a
 * network namespace (runner/bridge.h). */
#include "runner/bridge.h"
#include "runner/netns.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

/* A connected rtnetlink socket in nsfd (the socket stays in that namespace). */
static struct nl_sock *sock_in(int nsfd, int *err)
{
	int saved = -1;
	if (nsfd >= 0 && (saved = netns_enter(nsfd)) < 0) {
		*err = saved;
		return NULL;
	}
	struct nl_sock *sk = nl_socket_alloc();
	if (sk && nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		sk = NULL;
	}
	netns_leave(saved);
	if (!sk)
		*err = pv_error(EIO, "netlink socket: cannot connect");
	return sk;
}

static int nlerr(int e, const char *what, const char *name)
{
	int en = EIO;
	switch (-e) {
	case NLE_EXIST: en = EEXIST; break;
	case NLE_OBJ_NOTFOUND: case NLE_NODEV: en = ENODEV; break;
	case NLE_PERM: en = EPERM; break;
	case NLE_BUSY: en = EBUSY; break;
	case NLE_INVAL: en = EINVAL; break;
	}
	return pv_error(en, "%s %s: %s", what, name, nl_geterror(e));
}

int nb_bridge_add(int nsfd, const char *name)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct rtnl_link *l = rtnl_link_bridge_alloc();
	rtnl_link_set_name(l, name);
	int e = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, "create bridge", name) : 0;
}

int nb_link_del(int nsfd, const char *name)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct rtnl_link *l = rtnl_link_alloc();
	rtnl_link_set_name(l, name);
	int e = rtnl_link_delete(sk, l);
	rtnl_link_put(l);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, "delete link", name) : 0;
}

int nb_tap_open(int nsfd, const char *pattern, char *ifname)
{
	int saved = -1;
	if (nsfd >= 0 && (saved = netns_enter(nsfd)) < 0)
		return saved;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int ret = fd;
	if (fd < 0) {
		ret = pv_error(errno, "open /dev/net/tun: %s", strerror(errno));
	} else {
		struct ifreq ifr = {0};
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", pattern);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			ret = pv_error(errno, "TUNSETIFF %s: %s", pattern, strerror(errno));
			close(fd);
		} else {
			snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
		}
	}
	netns_leave(saved);
	return ret;
}

static int change(int nsfd, const char *name, void (*fill)(struct rtnl_link *, void *), void *arg,
		  const char *what)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct rtnl_link *old = NULL, *l = NULL;
	int e = rtnl_link_get_kernel(sk, 0, name, &old);
	if (e >= 0) {
		l = rtnl_link_alloc();
		fill(l, arg);
		e = rtnl_link_change(sk, old, l, 0);
	}
	if (l)
		rtnl_link_put(l);
	if (old)
		rtnl_link_put(old);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, what, name) : 0;
}

struct set_args {
	int master;
	bool up;
	const uint8_t *mac;
};

static void fill_set(struct rtnl_link *l, void *arg)
{
	struct set_args *a = arg;
	if (a->master > 0)
		rtnl_link_set_master(l, a->master);
	if (a->up)
		rtnl_link_set_flags(l, IFF_UP);
	else
		rtnl_link_unset_flags(l, IFF_UP);
	if (a->mac) {
		struct nl_addr *ad = nl_addr_build(AF_LLC, a->mac, 6);
		rtnl_link_set_addr(l, ad);
		nl_addr_put(ad);
	}
}

int nb_link_set(int nsfd, const char *name, const char *master, bool up, const uint8_t *mac)
{
	struct set_args a = {.master = 0, .up = up, .mac = mac};
	if (master) {
		int err;
		struct nl_sock *sk = sock_in(nsfd, &err);
		if (!sk)
			return err;
		struct rtnl_link *m = NULL;
		int e = rtnl_link_get_kernel(sk, 0, master, &m);
		if (e >= 0) {
			a.master = rtnl_link_get_ifindex(m);
			rtnl_link_put(m);
		}
		nl_socket_free(sk);
		if (e < 0)
			return nlerr(e, "find bridge", master);
	}
	return change(nsfd, name, fill_set, &a, "configure link");
}

struct move_args {
	int fd;
	const char *name;
};

static void fill_move(struct rtnl_link *l, void *arg)
{
	struct move_args *a = arg;
	rtnl_link_set_ns_fd(l, a->fd);
	if (a->name)
		rtnl_link_set_name(l, a->name);
}

int nb_link_move(int nsfd, const char *name, int to_nsfd, const char *newname)
{
	struct move_args a = {.fd = to_nsfd, .name = newname};
	return change(nsfd, name, fill_move, &a, "move link");
}

int nb_addr_add(int nsfd, const char *name, const char *cidr)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct rtnl_link *l = NULL;
	struct rtnl_addr *a = NULL;
	struct nl_addr *local = NULL;
	int e = rtnl_link_get_kernel(sk, 0, name, &l);
	if (e < 0)
		goto out;
	if ((e = nl_addr_parse(cidr, AF_INET, &local)) < 0)
		goto out;
	a = rtnl_addr_alloc();
	rtnl_addr_set_ifindex(a, rtnl_link_get_ifindex(l));
	rtnl_addr_set_local(a, local);
	e = rtnl_addr_add(sk, a, 0);
out:
	if (local)
		nl_addr_put(local);
	if (a)
		rtnl_addr_put(a);
	if (l)
		rtnl_link_put(l);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, "add address to", name) : 0;
}

int nb_route_default(int nsfd, const char *gw)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct nl_addr *dst = NULL, *via = NULL;
	struct rtnl_route *r = rtnl_route_alloc();
	int e = nl_addr_parse("0.0.0.0/0", AF_INET, &dst);
	if (e >= 0)
		e = nl_addr_parse(gw, AF_INET, &via);
	if (e >= 0) {
		struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
		rtnl_route_nh_set_gateway(nh, via);
		rtnl_route_set_family(r, AF_INET);
		rtnl_route_set_dst(r, dst);
		rtnl_route_add_nexthop(r, nh);
		e = rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE);
	}
	if (dst)
		nl_addr_put(dst);
	if (via)
		nl_addr_put(via);
	rtnl_route_put(r);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, "default route via", gw) : 0;
}

int nb_veth_add(int nsfd, const char *name, int peer_nsfd, const char *peer)
{
	int err;
	struct nl_sock *sk = sock_in(nsfd, &err);
	if (!sk)
		return err;
	struct rtnl_link *l = rtnl_link_veth_alloc();
	rtnl_link_set_name(l, name);
	struct rtnl_link *p = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(p, peer);
	if (peer_nsfd >= 0)
		rtnl_link_set_ns_fd(p, peer_nsfd);
	rtnl_link_put(p);
	int e = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_veth_release(l);
	nl_socket_free(sk);
	return e < 0 ? nlerr(e, "create veth", name) : 0;
}

int nb_sysctl(int nsfd, const char *path, const char *value)
{
	int saved = -1;
	if (nsfd >= 0 && (saved = netns_enter(nsfd)) < 0)
		return saved;
	char p[256];
	snprintf(p, sizeof(p), "/proc/sys/%s", path);
	int ret = 0;
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		ret = pv_error(errno, "write %s: %s", p, strerror(errno));
	if (fd >= 0)
		close(fd);
	netns_leave(saved);
	return ret;
}

int nb_tap_carrier(int fd, bool on)
{
	int v = on;
	if (ioctl(fd, TUNSETCARRIER, &v) < 0)
		return pv_error(errno, "TUNSETCARRIER: %s", strerror(errno));
	return 0;
}
