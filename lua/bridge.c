/* bridge.c — the C half of Bridge (lua/bridge.lua): Linux bridges in the run's
 * network namespace (runner/netns.h, runner/bridge.h). Exposed as provium._c_net:
 *   bridge_add(ifname) -> true, or false when the name is taken (another file of the
 *     run has it: the caller tries the next index);
 *   link_del(ifname); addr_add(ifname, cidr); run_name() -> "provium-..." or "";
 *   nat_up{...} / nat_down{...}: a veth from the run's namespace to the host's with
 *     an nftables masquerade rule (libnftables) on it, in the run's namespace only;
 *   route_default(pid, gw): a default route in a sandbox's namespace;
 *   run_tag() -> the 4-hex tag host-side interface names carry. */
#include "lua/errors.h"
#include "runner/bridge.h"
#include "runner/netns.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netlink/route/addr.h>
#include <nftables/libnftables.h>

#include <lauxlib.h>
#include <lua.h>

static int runns(lua_State *L, const char *op)
{
	int fd = netns_open_run();
	if (fd < 0)
		pv_lua_error(L, "infra", op, NULL, "the run's network namespace: %s", pv_errmsg());
	return fd;
}

static int l_bridge_add(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int fd = runns(L, "lab:bridge");
	int e = nb_bridge_add(fd, name);
	if (e == -EEXIST) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (e == 0)
		e = nb_link_set(fd, name, NULL, true, NULL);
	if (e < 0)
		return pv_lua_error(L, "infra", "lab:bridge", NULL, "%s", pv_errmsg());
	lua_pushboolean(L, 1);
	return 1;
}

static int l_link_del(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int fd = runns(L, "bridge teardown");
	lua_pushboolean(L, nb_link_del(fd, name) == 0);
	return 1;
}

static int l_addr_add(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1), *cidr = luaL_checkstring(L, 2);
	if (nb_addr_add(runns(L, "bridge"), name, cidr) < 0)
		return pv_lua_error(L, "infra", "bridge", NULL, "%s", pv_errmsg());
	return 0;
}

static int l_run_name(lua_State *L)
{
	runns(L, "bridge");
	lua_pushstring(L, netns_run_name());
	return 1;
}

static const char *field(lua_State *L, const char *k)
{
	lua_getfield(L, 1, k);
	const char *s = luaL_checkstring(L, -1);
	lua_pop(L, 1);
	return s;
}

/* Runs nft commands in the run's namespace. */
static int nft_in(int nsfd, const char *cmd)
{
	int saved = netns_enter(nsfd);
	if (saved < 0)
		return saved;
	int ret = 0;
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		ret = pv_error(ENOMEM, "nftables: cannot make a context");
	} else {
		nft_ctx_buffer_error(ctx);
		if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
			const char *e = nft_ctx_get_error_buffer(ctx);
			ret = pv_error(EIO, "nftables: %s", e && *e ? e : "command failed");
		}
		nft_ctx_free(ctx);
	}
	netns_leave(saved);
	return ret;
}

/* nat_up{bridge=, gw_cidr=, veth=, host_veth=, host_cidr=, run_cidr=, host_ip=, table=} */
static int l_nat_up(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *br = field(L, "bridge"), *gw = field(L, "gw_cidr"), *veth = field(L, "veth");
	const char *hveth = field(L, "host_veth"), *hcidr = field(L, "host_cidr");
	const char *rcidr = field(L, "run_cidr"), *hip = field(L, "host_ip"), *table = field(L, "table");
	int fd = runns(L, "bridge:nat");
	int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (host < 0)
		return pv_lua_error(L, "infra", "bridge:nat", NULL, "open own netns: %s", strerror(errno));
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "add table ip %s\n"
		 "add chain ip %s post { type nat hook postrouting priority 100; }\n"
		 "add rule ip %s post oifname \"%s\" masquerade\n", table, table, table, veth);
	int e;
	if ((e = nb_addr_add(fd, br, gw)) < 0 && e != -EEXIST)
		goto fail;
	if ((e = nb_veth_add(fd, veth, host, hveth)) < 0 ||
	    (e = nb_addr_add(host, hveth, hcidr)) < 0 ||
	    (e = nb_link_set(host, hveth, NULL, true, NULL)) < 0 ||
	    (e = nb_addr_add(fd, veth, rcidr)) < 0 ||
	    (e = nb_link_set(fd, veth, NULL, true, NULL)) < 0 ||
	    (e = nb_route_default(fd, hip)) < 0 || (e = nft_in(fd, cmd)) < 0)
		goto fail;
	close(host);
	return 0;
fail:
	close(host);
	{
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", pv_errmsg());
		nb_link_del(fd, veth);
		return pv_lua_error(L, "infra", "bridge:nat", NULL, "%s", msg);
	}
}

/* nat_down{veth=, table=}: deleting one end of the veth removes both. */
static int l_nat_down(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *veth = field(L, "veth"), *table = field(L, "table");
	int fd = runns(L, "bridge:nat");
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "delete table ip %s\n", table);
	nft_in(fd, cmd);
	nb_link_del(fd, veth);
	return 0;
}

static int l_route_default(lua_State *L)
{
	int pid = (int)luaL_checkinteger(L, 1);
	const char *gw = luaL_checkstring(L, 2);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pv_lua_error(L, "infra", "bridge:nat", NULL, "open %s: %s", path, strerror(errno));
	int e = nb_route_default(fd, gw);
	close(fd);
	if (e < 0)
		return pv_lua_error(L, "infra", "bridge:nat", NULL, "%s", pv_errmsg());
	return 0;
}

/* host_net_used("a.b.c.d", prefixlen) -> true when a host address lies in that net
 * (another run's NAT veth, or the host's own), so NAT picks another /30. */
static int l_host_net_used(lua_State *L)
{
	struct in_addr net;
	if (inet_pton(AF_INET, luaL_checkstring(L, 1), &net) != 1)
		return luaL_error(L, "host_net_used: bad address");
	int len = (int)luaL_checkinteger(L, 2);
	uint32_t mask = len <= 0 ? 0 : htonl(~0u << (32 - len));
	bool used = false;
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	if (sk && nl_connect(sk, NETLINK_ROUTE) == 0 && rtnl_addr_alloc_cache(sk, &cache) == 0) {
		for (struct nl_object *o = nl_cache_get_first(cache); o && !used; o = nl_cache_get_next(o)) {
			struct nl_addr *a = rtnl_addr_get_local((struct rtnl_addr *)o);
			if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4) {
				uint32_t v;
				memcpy(&v, nl_addr_get_binary_addr(a), 4);
				used = (v & mask) == (net.s_addr & mask);
			}
		}
	}
	if (cache)
		nl_cache_free(cache);
	if (sk)
		nl_socket_free(sk);
	lua_pushboolean(L, used);
	return 1;
}

/* available() -> true, or false and why: what networking needs from the host. */
static int l_available(lua_State *L)
{
	const char *why = NULL;
	if (geteuid() != 0)
		why = "bridges need root (network namespaces, TAPs)";
	else if (access("/dev/net/tun", R_OK | W_OK) != 0)
		why = "no /dev/net/tun on this host";
	lua_pushboolean(L, why == NULL);
	if (!why)
		return 1;
	lua_pushstring(L, why);
	return 2;
}

static int l_run_tag(lua_State *L)
{
	lua_pushstring(L, netns_run_tag());
	return 1;
}

int pv_luaopen_bridge(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"bridge_add", l_bridge_add}, {"link_del", l_link_del},
		{"addr_add", l_addr_add}, {"run_name", l_run_name}, {"nat_up", l_nat_up},
		{"nat_down", l_nat_down}, {"route_default", l_route_default},
		{"run_tag", l_run_tag}, {"host_net_used", l_host_net_used},
		{"available", l_available}, {NULL, NULL},
	};
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_net");
	lua_pop(L, 1);
	return 0;
}
