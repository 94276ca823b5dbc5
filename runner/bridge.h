/* bridge.h — Linux bridges, TAPs, veths and addresses in a given network namespace
 * (the run's, a sandbox's or the host's), through libnl-route-3. Every function
 * takes the namespace as an fd (-1: the caller's own) and switches only the calling
 * thread for the duration of the call. Returns 0 (or an fd) or -errno with
 * pv_error() set. */
#ifndef PROVIUM_RUNNER_BRIDGE_H
#define PROVIUM_RUNNER_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

/* A bridge named `name`; -EEXIST when the name is taken (callers pick another). */
int nb_bridge_add(int nsfd, const char *name);
int nb_link_del(int nsfd, const char *name);
/* A TAP (IFF_TAP | IFF_NO_PI, non-blocking, close-on-exec) created in nsfd; the
 * kernel's name goes to ifname (16 bytes). pattern may hold %d. */
int nb_tap_open(int nsfd, const char *pattern, char *ifname);
/* Link settings: master (NULL: unchanged), up/down, mac (NULL: unchanged). */
int nb_link_set(int nsfd, const char *name, const char *master, bool up, const uint8_t *mac);
/* Moves a link to another namespace, renaming it there. */
int nb_link_move(int nsfd, const char *name, int to_nsfd, const char *newname);
/* Adds an IPv4 address "a.b.c.d/len" to a link. */
int nb_addr_add(int nsfd, const char *name, const char *cidr);
/* A default IPv4 route via gw. */
int nb_route_default(int nsfd, const char *gw);
/* A veth pair: `name` stays in nsfd, `peer` goes to peer_nsfd. */
int nb_veth_add(int nsfd, const char *name, int peer_nsfd, const char *peer);
/* Writes a /proc/sys file (e.g. "net/ipv6/conf/eth0/disable_ipv6") in nsfd. */
int nb_sysctl(int nsfd, const char *path, const char *value);
/* TUNSETCARRIER on a TAP fd. */
int nb_tap_carrier(int fd, bool on);

#endif
