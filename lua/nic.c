/* nic.c — the C half of a Nic on the sandbox backend: the relay. The sandbox's
 * interface is a TAP made in the run's namespace, moved into the sandbox's network
 * namespace and configured there; its twin TAP is a port of the bridge. Frames read
 * from one are run through the NIC's netpath (devices/netpath.h: link state, fault
 * rules) and written to the other, so both backends share one datapath. Every relay
 * of the worker is served by one event-loop thread; delayed frames wait on its
 * timer queue, so latency never blocks other NICs or the Lua scheduler.
 * On the kvm backend the guest side is no TAP but provium's end of a virtio-net
 * slot's socketpair (lua/kvm.c: attach{fd=}): messages there carry the 12-byte
 * virtio-net header, stripped before netpath and prepended after it.
 * Exposed as provium._c_nic.attach{...} -> Relay userdata (lua/nic.lua wraps it). */
#include "devices/netpath.h"
#include "devices/netpath_capture.h"
#include "devices/netpath_rules.h"
#include "lua/capture.h"
#include "lua/errors.h"
#include "runner/bridge.h"
#include "runner/netns.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define RELAY_MT "provium.Relay"

struct relay {
	struct netpath *np;
	int gfd, hfd;          /* guest-side TAP (in the sandbox), bridge-side TAP */
	char gname[IFNAMSIZ], hname[IFNAMSIZ];
	uint8_t mac[6];
	bool closed;
	bool vnet;             /* gfd is a virtio-net slot's socket (kvm): 12-byte header */
	pthread_mutex_t sublock;   /* captures listening on this NIC */
	struct sub {
		struct np_capture *c;
		unsigned dirs;     /* NETPATH_DIR_BIT()s */
	} subs[16];
	unsigned nsubs;
};

/* ---- the worker's network event loop ---- */

static struct evloop *net_loop;
static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;

static void *loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static struct evloop *get_loop(void)
{
	pthread_mutex_lock(&loop_lock);
	if (!net_loop) {
		struct evloop *l;
		pthread_t t;
		if (evloop_create(&l) == 0) {
			if (pthread_create(&t, NULL, loop_main, l) == 0) {
				pthread_detach(t);
				net_loop = l;
			} else {
				evloop_destroy(l);
				pv_error(EAGAIN, "network relay thread: cannot start");
			}
		}
	}
	pthread_mutex_unlock(&loop_lock);
	return net_loop;
}

struct sync_call {
	void (*fn)(struct relay *);
	struct relay *r;
	sem_t done;
};

static void sync_tramp(void *opaque)
{
	struct sync_call *c = opaque;
	c->fn(c->r);
	sem_post(&c->done);
}

/* Runs fn(r) on the loop thread and waits for it. */
static void on_loop(void (*fn)(struct relay *), struct relay *r)
{
	struct sync_call c = {.fn = fn, .r = r};
	sem_init(&c.done, 0, 0);
	if (evloop_call(net_loop, sync_tramp, &c) < 0) {
		fn(r);
	} else {
		while (sem_wait(&c.done) < 0 && errno == EINTR)
			;
	}
	sem_destroy(&c.done);
}

struct evloop *pv_lua_net_loop(void)
{
	return get_loop();
}

struct sync_any {
	void (*fn)(void *);
	void *arg;
	sem_t done;
};

static void sync_any_tramp(void *opaque)
{
	struct sync_any *c = opaque;
	c->fn(c->arg);
	sem_post(&c->done);
}

void pv_lua_net_loop_sync(void (*fn)(void *), void *arg)
{
	struct sync_any c = {.fn = fn, .arg = arg};
	sem_init(&c.done, 0, 0);
	if (!net_loop || evloop_call(net_loop, sync_any_tramp, &c) < 0) {
		fn(arg);
	} else {
		while (sem_wait(&c.done) < 0 && errno == EINTR)
			;
	}
	sem_destroy(&c.done);
}

/* ---- datapath ---- */

static int sink(void *opaque, enum netpath_dir dir, const uint8_t *frame, size_t len)
{
	struct relay *r = opaque;
	int fd = dir == NETPATH_TO_HOST ? r->hfd : r->gfd;
	if (fd < 0)
		return -EBADF;
	if (r->vnet && dir == NETPATH_TO_GUEST) {
		static const uint8_t hdr[12] = {[10] = 1}; /* num_buffers = 1 */
		struct iovec iov[2] = {{(void *)hdr, sizeof(hdr)}, {(void *)frame, len}};
		if (writev(fd, iov, 2) != (ssize_t)(sizeof(hdr) + len))
			return -EIO;
	} else if (write(fd, frame, len) != (ssize_t)len) {
		return -EIO;
	}
	/* captures see what was delivered: both copies of a duplicate, the corrupted
	 * bytes, a delayed frame when it arrives */
	pthread_mutex_lock(&r->sublock);
	if (r->nsubs) {
		uint64_t now = pv_wall_ns();
		for (unsigned i = 0; i < r->nsubs; i++)
			if (r->subs[i].dirs & NETPATH_DIR_BIT(dir))
				np_capture_frame(r->subs[i].c, now, dir, frame, len);
	}
	pthread_mutex_unlock(&r->sublock);
	return 0;
}

static void pump(struct relay *r, int fd, enum netpath_dir dir)
{
	uint8_t buf[65536];
	for (int i = 0; i < 256; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		size_t skip = r->vnet && fd == r->gfd ? 12 : 0;
		if (n > (ssize_t)skip) {
			netpath_send(r->np, dir, buf + skip, (size_t)n - skip);
			continue;
		}
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* the device went away (its sandbox died): stop watching it */
		evloop_del_fd(net_loop, fd);
		return;
	}
}

static void on_guest(void *opaque, uint32_t ev)
{
	(void)ev;
	struct relay *r = opaque;
	pump(r, r->gfd, NETPATH_TO_HOST);
}

static void on_host(void *opaque, uint32_t ev)
{
	(void)ev;
	struct relay *r = opaque;
	pump(r, r->hfd, NETPATH_TO_GUEST);
}

static void relay_stop(struct relay *r)
{
	if (r->gfd >= 0)
		evloop_del_fd(net_loop, r->gfd);
	if (r->hfd >= 0)
		evloop_del_fd(net_loop, r->hfd);
	netpath_destroy(r->np);
	r->np = NULL;
}

static void relay_close(struct relay *r)
{
	if (r->closed)
		return;
	r->closed = true;
	if (r->np)
		on_loop(relay_stop, r);
	if (r->gfd >= 0)
		close(r->gfd);
	if (r->hfd >= 0)
		close(r->hfd);
	r->gfd = r->hfd = -1;
	pthread_mutex_lock(&r->sublock);
	for (unsigned i = 0; i < r->nsubs; i++)
		np_capture_unref(r->subs[i].c);
	r->nsubs = 0;
	pthread_mutex_unlock(&r->sublock);
}

static struct relay *check_relay(lua_State *L, int i)
{
	struct relay *r = luaL_checkudata(L, i, RELAY_MT);
	if (r->closed)
		pv_lua_error(L, "closed", "nic", NULL, "the NIC was detached");
	return r;
}

static const char *field_str(lua_State *L, int t, const char *k, const char *def)
{
	lua_getfield(L, t, k);
	const char *s = luaL_optstring(L, -1, def);
	lua_pop(L, 1);
	return s;
}

/* attach{bridge=ifname, pid=sandbox pid, ifname="eth0", mac="02:..", cidr="a.b.c.d/24",
 *        gw=nil, name="vm/bridge", seed=n} -> Relay */
static int l_attach(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *br = field_str(L, 1, "bridge", NULL);
	const char *ifname = field_str(L, 1, "ifname", "eth0");
	const char *macs = field_str(L, 1, "mac", NULL);
	const char *cidr = field_str(L, 1, "cidr", NULL);
	const char *name = field_str(L, 1, "name", "nic");
	lua_getfield(L, 1, "fd");
	int gfd = (int)luaL_optinteger(L, -1, -1);
	lua_getfield(L, 1, "pid");
	int pid = gfd >= 0 ? 0 : (int)luaL_checkinteger(L, -1);
	lua_getfield(L, 1, "seed");
	uint64_t seed = (uint64_t)luaL_optinteger(L, -1, 0);
	lua_pop(L, 3);
	if (!br || !macs)
		return luaL_error(L, "attach: bridge and mac are required");

	struct relay *r = lua_newuserdatauv(L, sizeof(*r), 0);
	memset(r, 0, sizeof(*r));
	r->gfd = r->hfd = -1;
	pthread_mutex_init(&r->sublock, NULL);
	r->closed = true; /* until fully set up */
	luaL_setmetatable(L, RELAY_MT);
	if (gfd >= 0) {
		/* kvm: the fd is ours from here on */
		r->gfd = gfd;
		r->vnet = true;
		snprintf(r->gname, sizeof(r->gname), "%s", ifname);
	}
	if (netpath_parse_mac(macs, r->mac) < 0)
		return pv_lua_error(L, "invalid", "bridge:attach", NULL, "bad MAC %s", macs);
	int runns = netns_open_run();
	if (runns < 0)
		return pv_lua_error(L, "infra", "bridge:attach", NULL, "%s", pv_errmsg());
	if (!get_loop())
		return pv_lua_error(L, "infra", "bridge:attach", NULL, "%s", pv_errmsg());
	int e;
	int sbns = -1;
	if (r->vnet) {
		if ((e = nb_tap_open(runns, "pvt%d", r->hname)) < 0)
			goto fail;
		r->hfd = e;
		if ((e = nb_link_set(runns, r->hname, br, true, NULL)) < 0)
			goto fail;
		goto datapath;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	sbns = open(path, O_RDONLY | O_CLOEXEC);
	if (sbns < 0)
		return pv_lua_error(L, "infra", "bridge:attach", NULL, "open %s: %s", path, strerror(errno));
	char tmpname[IFNAMSIZ];
	if ((e = nb_tap_open(runns, "pvt%d", r->hname)) < 0)
		goto fail;
	r->hfd = e;
	if ((e = nb_link_set(runns, r->hname, br, true, NULL)) < 0)
		goto fail;
	if ((e = nb_tap_open(runns, "pvs%d", tmpname)) < 0)
		goto fail;
	r->gfd = e;
	if ((e = nb_link_set(runns, tmpname, NULL, false, r->mac)) < 0 ||
	    (e = nb_link_move(runns, tmpname, sbns, ifname)) < 0)
		goto fail;
	snprintf(r->gname, sizeof(r->gname), "%s", ifname);
	char sys[128];
	snprintf(sys, sizeof(sys), "net/ipv6/conf/%s/disable_ipv6", ifname);
	nb_sysctl(sbns, sys, "1");
	if (cidr && (e = nb_addr_add(sbns, ifname, cidr)) < 0)
		goto fail;
	if ((e = nb_link_set(sbns, ifname, NULL, true, NULL)) < 0)
		goto fail;
	lua_getfield(L, 1, "gw");
	if (lua_isstring(L, -1) && (e = nb_route_default(sbns, lua_tostring(L, -1))) < 0)
		goto fail;
	lua_pop(L, 1);
	close(sbns);
	sbns = -1;
datapath:
	if ((e = netpath_create(name, net_loop, netpath_fault_seed(seed, name, 0), &r->np)) < 0)
		goto fail;
	netpath_set_sink(r->np, NETPATH_TO_HOST, sink, r);
	netpath_set_sink(r->np, NETPATH_TO_GUEST, sink, r);
	r->closed = false;
	if ((e = evloop_add_fd(net_loop, r->gfd, EPOLLIN, on_guest, r)) < 0 ||
	    (e = evloop_add_fd(net_loop, r->hfd, EPOLLIN, on_host, r)) < 0)
		goto fail;
	return 1;
fail:
	if (sbns >= 0)
		close(sbns);
	{
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", pv_errmsg());
		r->closed = false;
		relay_close(r);
		return pv_lua_error(L, "infra", "bridge:attach", NULL, "%s", msg);
	}
}

static int l_close(lua_State *L)
{
	relay_close(luaL_checkudata(L, 1, RELAY_MT));
	return 0;
}

static int l_info(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	lua_newtable(L);
	lua_pushstring(L, r->hname);
	lua_setfield(L, -2, "tap");
	lua_pushstring(L, r->gname);
	lua_setfield(L, -2, "ifname");
	return 1;
}

static int l_counters(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	struct netpath_counters c;
	netpath_counters(r->np, &c);
	const struct netpath_dir_counters *tx = &c.dir[NETPATH_TO_HOST], *rx = &c.dir[NETPATH_TO_GUEST];
	lua_newtable(L);
#define SET(k, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, k))
	SET("rx_packets", rx->packets);
	SET("rx_bytes", rx->bytes);
	SET("rx_dropped", rx->dropped);
	SET("tx_packets", tx->packets);
	SET("tx_bytes", tx->bytes);
	SET("tx_dropped", tx->dropped);
	SET("delayed", tx->delayed + rx->delayed);
	SET("duplicated", tx->duplicated + rx->duplicated);
	SET("corrupted", tx->corrupted + rx->corrupted);
#undef SET
	return 1;
}

/* r:set_link(up): the guest sees the carrier change; the relay stops frames. */
static int l_set_link(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	bool up = lua_toboolean(L, 2);
	netpath_set_link(r->np, up);
	/* kvm: the virtio-net slot's carrier is lua/kvm.c's (nic.lua calls nic_link) */
	if (!r->vnet && nb_tap_carrier(r->gfd, up) < 0)
		return pv_lua_error(L, "infra", up ? "nic:link_up" : "nic:link_down", NULL, "%s", pv_errmsg());
	return 0;
}

static int l_link(lua_State *L)
{
	lua_pushboolean(L, netpath_link_up(check_relay(L, 1)->np));
	return 1;
}

/* Reads an array of MAC strings at t[k] into a malloc'd set; *n its length. */
static uint8_t (*mac_set(lua_State *L, int t, const char *k, size_t *n))[6]
{
	*n = 0;
	lua_getfield(L, t, k);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	size_t len = lua_rawlen(L, -1);
	uint8_t (*set)[6] = calloc(len ? len : 1, 6);
	for (size_t i = 0; set && i < len; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i + 1);
		if (netpath_parse_mac(lua_tostring(L, -1), set[*n]) == 0)
			(*n)++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return set;
}

/* r:add_fault{action="drop"|"delay"|"duplicate"|"corrupt", rate=, delay_ms=, jitter_ms=,
 *             everything=, peers={mac...} or nil, locals={mac...}, seed=, label=} -> id */
static int l_add_fault(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	static const char *const acts[] = {"pass", "drop", "delay", "duplicate", "corrupt", NULL};
	lua_getfield(L, 2, "action");
	int act = luaL_checkoption(L, -1, NULL, acts);
	lua_getfield(L, 2, "rate");
	double rate = luaL_optnumber(L, -1, 1);
	lua_getfield(L, 2, "delay_ms");
	double d = luaL_optnumber(L, -1, 0);
	lua_getfield(L, 2, "jitter_ms");
	double j = luaL_optnumber(L, -1, 0);
	lua_getfield(L, 2, "everything");
	bool every = lua_toboolean(L, -1);
	lua_getfield(L, 2, "seed");
	uint64_t seed = (uint64_t)luaL_optinteger(L, -1, 0);
	lua_getfield(L, 2, "label");
	const char *label = luaL_optstring(L, -1, NULL);
	size_t np = 0, nl = 0;
	uint8_t (*peers)[6] = mac_set(L, 2, "peers", &np);
	uint8_t (*locals)[6] = mac_set(L, 2, "locals", &nl);
	struct netpath_fault f = {
		.action = (enum netpath_action)act, .rate = rate,
		.delay_ns = (uint64_t)(d * 1e6), .jitter_ns = (uint64_t)(j * 1e6),
		.everything = every, .peers = (const uint8_t (*)[6])peers, .npeers = np,
		.locals = (const uint8_t (*)[6])locals, .nlocals = nl,
		.seed = netpath_fault_seed(seed, netpath_name(r->np), (uint64_t)act), .label = label,
	};
	int id = netpath_fault_add(r->np, &f);
	free(peers);
	free(locals);
	if (id < 0)
		return pv_lua_error(L, "invalid", "bridge fault", NULL, "%s", pv_errmsg());
	lua_pushinteger(L, id);
	return 1;
}

static int l_del_rule(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	netpath_del_rule(r->np, (int)luaL_checkinteger(L, 2));
	return 0;
}

/* r:subscribe(capture, "tx"|"rx"|"both"): the capture gets frames of this NIC. */
static int l_subscribe(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	struct np_capture *c = pv_lua_check_capture(L, 2);
	static const char *const opts[] = {"tx", "rx", "both", NULL};
	static const unsigned bits[] = {NETPATH_DIR_BIT(NETPATH_TO_HOST),
					NETPATH_DIR_BIT(NETPATH_TO_GUEST), NETPATH_BOTH};
	unsigned dirs = bits[luaL_checkoption(L, 3, "both", opts)];
	pthread_mutex_lock(&r->sublock);
	bool ok = r->nsubs < PV_ARRAY_SIZE(r->subs);
	if (ok) {
		np_capture_ref(c);
		r->subs[r->nsubs++] = (struct sub){.c = c, .dirs = dirs};
	}
	pthread_mutex_unlock(&r->sublock);
	if (!ok)
		return pv_lua_error(L, "invalid", "capture", NULL, "too many captures on one NIC (16)");
	return 0;
}

static int l_unsubscribe(lua_State *L)
{
	struct relay *r = check_relay(L, 1);
	struct np_capture *c = pv_lua_check_capture(L, 2);
	pthread_mutex_lock(&r->sublock);
	for (unsigned i = 0; i < r->nsubs; i++) {
		if (r->subs[i].c == c) {
			np_capture_unref(c);
			r->subs[i] = r->subs[--r->nsubs];
			break;
		}
	}
	pthread_mutex_unlock(&r->sublock);
	return 0;
}

static int l_rules(lua_State *L)
{
	lua_pushinteger(L, netpath_rule_count(check_relay(L, 1)->np));
	return 1;
}

int pv_luaopen_nic(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"close", l_close}, {"info", l_info}, {"counters", l_counters},
		{"set_link", l_set_link}, {"link", l_link}, {"add_fault", l_add_fault},
		{"del_rule", l_del_rule}, {"rules", l_rules}, {"subscribe", l_subscribe},
		{"unsubscribe", l_unsubscribe}, {NULL, NULL},
	};
	static const luaL_Reg fns[] = {{"attach", l_attach}, {NULL, NULL}};
	luaL_newmetatable(L, RELAY_MT);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_close);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_nic");
	lua_pop(L, 1);
	return 0;
}
