/* netns.h — the run's private network namespace (ARCHITECTURE.md "Networking"):
 * every bridge and TAP of a `provium run` lives in one namespace named
 * provium-<parent pid>-<rand>, visible in `ip netns` while the run lasts.
 *
 * The parent (cmd_run.c) only picks the name (netns_run_init: exported to the
 * workers as $PROVIUM_NETNS) and removes whatever exists at the end
 * (netns_run_cleanup: the /run/netns mount and the host ends of NAT veths), also
 * after a worker crash or SIGINT/SIGTERM, and sweeps namespaces of dead runs whose
 * parent was SIGKILLed. The first worker that needs the namespace creates it
 * (netns_open_run), under a lock so parallel workers share one. A worker started
 * without $PROVIUM_NETNS gets an anonymous namespace that dies with it.
 *
 * netns_enter/netns_leave switch the calling thread's network namespace (sockets,
 * TAPs and /proc/sys/net files opened in between belong to it). */
#ifndef PROVIUM_NETNS_H
#define PROVIUM_NETNS_H

#define NETNS_ENV "PROVIUM_NETNS"
#define NETNS_DIR "/run/netns"
/* Host-side interfaces of a run start with "pvh" + the run's 4-hex tag. */
#define NETNS_HOST_PREFIX "pvh"

/* Parent: choose the run's name and export it; sweep namespaces of dead runs. */
int netns_run_init(void);
/* Parent: remove the run's namespace and host-side links. Idempotent. */
void netns_run_cleanup(void);

/* Worker: an fd (O_RDONLY|O_CLOEXEC, owned by netns.c: do not close) for the run's
 * namespace, created on first use. -errno with pv_error() set. */
int netns_open_run(void);
/* The run's name ("" for an anonymous namespace) and its 4-hex tag. */
const char *netns_run_name(void);
const char *netns_run_tag(void);

/* Switches the calling thread into nsfd; returns a saved fd for netns_leave, or
 * -errno. */
int netns_enter(int nsfd);
/* Back to the namespace saved by netns_enter (closes it). */
void netns_leave(int saved);

/* Names of namespaces matching provium-<pid>-* whose pid is not running (for tests). */
int netns_sweep_stale(void);
/* Removes the run namespace `name` (provium-PID-TAG) and its host-side links: what
 * netns_run_cleanup does, for a run that kept kvm VMs (runner/kept.c, on their end). */
void netns_remove(const char *name);

#endif
