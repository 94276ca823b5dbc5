/* capture.c — the C half of Capture (a packet stream, lua/capture.lua) over
 * devices/netpath_capture.h. provium._c_net_capture.open(filter, path) -> handle with
 * pop() -> packet table or nil, fd() (readable while packets are queued), close(),
 * stats(). A packet table: {time=, len=, data=, src=, dst=, proto=, dir=, src_mac=,
 * dst_mac=, sport=, dport=}: src/dst are IPv4 addresses for IPv4 and ARP, MACs
 * otherwise; proto is "icmp", "tcp", "udp", "arp", "ipv4:<n>", "ipv6" or "0x<type>";
 * dir is "tx"/"rx" for a NIC, "bridge" for a live capture.
 * live(handle, ifname) -> Live (close()): libpcap on a bridge in the run's namespace,
 * promiscuous, feeding the capture from the network event loop. */
#include "lua/capture.h"
#include "devices/netpath_capture.h"
#include "lua/errors.h"
#include "runner/netns.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define CAPTURE_MT "provium.CaptureHandle"

struct lcap {
	struct np_capture *c;
};

struct np_capture *pv_lua_check_capture(lua_State *L, int i)
{
	struct lcap *h = luaL_checkudata(L, i, CAPTURE_MT);
	if (!h->c)
		pv_lua_error(L, "closed", "capture", NULL, "the capture was closed");
	return h->c;
}

static int l_open(lua_State *L)
{
	const char *filter = luaL_optstring(L, 1, NULL), *path = luaL_optstring(L, 2, NULL);
	struct lcap *h = lua_newuserdatauv(L, sizeof(*h), 0);
	h->c = NULL;
	luaL_setmetatable(L, CAPTURE_MT);
	if (np_capture_open(filter, path, &h->c) < 0)
		return pv_lua_error(L, "invalid", "capture", NULL, "%s", pv_errmsg());
	return 1;
}

static void push_ip(lua_State *L, const uint8_t *p, const char *k)
{
	lua_pushfstring(L, "%d.%d.%d.%d", p[0], p[1], p[2], p[3]);
	lua_setfield(L, -2, k);
}

static void push_mac(lua_State *L, const uint8_t *p, const char *k)
{
	char s[18];
	snprintf(s, sizeof(s), "%02x:%02x:%02x:%02x:%02x:%02x", p[0], p[1], p[2], p[3], p[4], p[5]);
	lua_pushstring(L, s);
	lua_setfield(L, -2, k);
}

static void push_packet(lua_State *L, const struct np_packet *p)
{
	const uint8_t *f = p->data;
	size_t n = p->len;
	lua_createtable(L, 0, 12);
	lua_pushnumber(L, (double)p->time_ns / 1e9);
	lua_setfield(L, -2, "time");
	lua_pushinteger(L, (lua_Integer)n);
	lua_setfield(L, -2, "len");
	lua_pushlstring(L, (const char *)f, n);
	lua_setfield(L, -2, "data");
	lua_pushstring(L, p->dir == 0 ? "tx" : p->dir == 1 ? "rx" : "bridge");
	lua_setfield(L, -2, "dir");
	if (n < 14) {
		lua_pushstring(L, "runt");
		lua_setfield(L, -2, "proto");
		return;
	}
	push_mac(L, f, "dst_mac");
	push_mac(L, f + 6, "src_mac");
	unsigned type = (unsigned)f[12] << 8 | f[13];
	if (type == 0x0800 && n >= 34) {
		unsigned ihl = (f[14] & 15u) * 4, proto = f[23];
		push_ip(L, f + 26, "src");
		push_ip(L, f + 30, "dst");
		const char *pn = proto == 1 ? "icmp" : proto == 6 ? "tcp" : proto == 17 ? "udp" : NULL;
		if (pn)
			lua_pushstring(L, pn);
		else
			lua_pushfstring(L, "ipv4:%d", (int)proto);
		lua_setfield(L, -2, "proto");
		if ((proto == 6 || proto == 17) && n >= 14 + ihl + 4) {
			lua_pushinteger(L, f[14 + ihl] << 8 | f[15 + ihl]);
			lua_setfield(L, -2, "sport");
			lua_pushinteger(L, f[16 + ihl] << 8 | f[17 + ihl]);
			lua_setfield(L, -2, "dport");
		}
		if (proto == 1 && n >= 14 + ihl + 1) {
			lua_pushinteger(L, f[14 + ihl]);
			lua_setfield(L, -2, "icmp_type");
		}
		return;
	}
	if (type == 0x0806 && n >= 42) {
		push_ip(L, f + 28, "src");
		push_ip(L, f + 38, "dst");
		lua_pushstring(L, "arp");
		lua_setfield(L, -2, "proto");
		return;
	}
	push_mac(L, f + 6, "src");
	push_mac(L, f, "dst");
	if (type == 0x86dd)
		lua_pushstring(L, "ipv6");
	else {
		char t[8];
		snprintf(t, sizeof(t), "0x%04x", type);
		lua_pushstring(L, t);
	}
	lua_setfield(L, -2, "proto");
}

static int l_pop(lua_State *L)
{
	struct np_packet *p = np_capture_pop(pv_lua_check_capture(L, 1));
	if (!p)
		return 0;
	push_packet(L, p);
	free(p);
	return 1;
}

static int l_fd(lua_State *L)
{
	lua_pushinteger(L, np_capture_fd(pv_lua_check_capture(L, 1)));
	return 1;
}

static int l_stop(lua_State *L)
{
	np_capture_close(pv_lua_check_capture(L, 1));
	return 0;
}

static int l_stats(lua_State *L)
{
	uint64_t m, o;
	np_capture_stats(pv_lua_check_capture(L, 1), &m, &o);
	lua_pushinteger(L, (lua_Integer)m);
	lua_pushinteger(L, (lua_Integer)o);
	return 2;
}

static int l_gc(lua_State *L)
{
	struct lcap *h = luaL_checkudata(L, 1, CAPTURE_MT);
	np_capture_unref(h->c);
	h->c = NULL;
	return 0;
}

/* ---- live capture on a bridge ---- */

#define LIVE_MT "provium.LiveCapture"

struct live {
	pcap_t *p;
	int fd;
	struct np_capture *c;
};

static void live_pkt(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct live *l = (struct live *)user;
	uint64_t t = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec * 1000u;
	np_capture_frame(l->c, t, 2, data, h->caplen);
}

static void live_ready(void *opaque, uint32_t ev)
{
	(void)ev;
	struct live *l = opaque;
	if (pcap_dispatch(l->p, 256, live_pkt, (u_char *)l) < 0)
		evloop_del_fd(pv_lua_net_loop(), l->fd);
}

static void live_stop(void *arg)
{
	struct live *l = arg;
	evloop_del_fd(pv_lua_net_loop(), l->fd);
	pcap_close(l->p);
	l->p = NULL;
}

static int l_live_close(lua_State *L)
{
	struct live *l = luaL_checkudata(L, 1, LIVE_MT);
	if (l->p)
		pv_lua_net_loop_sync(live_stop, l);
	if (l->c)
		np_capture_unref(l->c);
	l->c = NULL;
	return 0;
}

static int l_live(lua_State *L)
{
	struct np_capture *c = pv_lua_check_capture(L, 1);
	const char *ifname = luaL_checkstring(L, 2);
	struct live *l = lua_newuserdatauv(L, sizeof(*l), 0);
	memset(l, 0, sizeof(*l));
	luaL_setmetatable(L, LIVE_MT);
	int ns = netns_open_run();
	struct evloop *loop = pv_lua_net_loop();
	if (ns < 0 || !loop)
		return pv_lua_error(L, "infra", "bridge:capture", NULL, "%s", pv_errmsg());
	char err[PCAP_ERRBUF_SIZE] = "";
	int saved = netns_enter(ns);
	if (saved < 0)
		return pv_lua_error(L, "infra", "bridge:capture", NULL, "%s", pv_errmsg());
	pcap_t *p = pcap_create(ifname, err);
	int r = -1;
	if (p) {
		pcap_set_snaplen(p, 65535);
		pcap_set_promisc(p, 1);
		pcap_set_immediate_mode(p, 1);
		r = pcap_activate(p);
		if (r < 0)
			snprintf(err, sizeof(err), "%s", pcap_geterr(p));
	}
	netns_leave(saved);
	if (r < 0 || pcap_setnonblock(p, 1, err) < 0 || (l->fd = pcap_get_selectable_fd(p)) < 0) {
		if (p)
			pcap_close(p);
		return pv_lua_error(L, "infra", "bridge:capture", NULL, "libpcap on %s: %s", ifname, err);
	}
	l->p = p;
	l->c = c;
	np_capture_ref(c);
	if (evloop_add_fd(loop, l->fd, EPOLLIN, live_ready, l) < 0) {
		pcap_close(p);
		l->p = NULL;
		return pv_lua_error(L, "infra", "bridge:capture", NULL, "%s", pv_errmsg());
	}
	return 1;
}

int pv_luaopen_capture(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"pop", l_pop}, {"fd", l_fd}, {"stop", l_stop}, {"stats", l_stats}, {NULL, NULL},
	};
	static const luaL_Reg fns[] = {{"open", l_open}, {"live", l_live}, {NULL, NULL}};
	luaL_newmetatable(L, LIVE_MT);
	lua_newtable(L);
	lua_pushcfunction(L, l_live_close);
	lua_setfield(L, -2, "close");
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_live_close);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newmetatable(L, CAPTURE_MT);
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lua_getglobal(L, "provium");
	luaL_newlib(L, fns);
	lua_setfield(L, -2, "_c_net_capture");
	lua_pop(L, 1);
	return 0;
}
