/* sandbox.h — the sandbox backend: a "VM" that is the agent running on the host inside
 * fresh user/mount/pid/net/uts/ipc namespaces (the user namespace identity-mapped, and
 * left out when the host refuses it or PROVIUM_SANDBOX_USERNS=0), with a private
 * writable root (overlayfs on a tmpfs upper over build/rootfs), connected to the host
 * over a socketpair.
 *
 * The sandbox's PID 1 is the rootfs's /init (started with PROVIUM_SANDBOX=1 and
 * PROVIUM_AGENT_FD=3), or /bin/provium-agent --fd 3 when the rootfs has no /init. Its stdout/stderr are the console (kept in a ring buffer by a
 * reader thread), its stdin is console input. Killing PID 1 kills the whole pid
 * namespace; the mounts live only in the sandbox's mount namespace, so nothing is left on
 * the host. PR_SET_PDEATHSIG ties the sandbox to the thread that started it (except a
 * .keepable one, for --keep: it ends when its agent socket closes, or is held by the
 * keeper process of sandbox_keep).
 *
 * Extra agent connections (Workers): sandbox_connect() starts another agent process
 * inside the sandbox's namespaces (setns) serving a fresh socketpair, so Workers work
 * with any /init and die with the sandbox. */
#ifndef PROVIUM_SANDBOX_H
#define PROVIUM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_CONSOLE_SIZE (1u << 20) /* console ring buffer: 1 MiB */

struct sandbox_config {
	const char *name;            /* hostname inside; shown in errors */
	const char *rootfs;          /* directory; NULL = sandbox_default_rootfs() */
	const char *const *env;      /* extra "K=V" for /init (NULL-terminated), may be NULL */
	bool no_init;                /* exec the agent directly even if /init exists */
	bool keepable;               /* may outlive us (--keep): no PDEATHSIG; see sandbox_keep */
};

struct sandbox;

/* Starts a sandbox. Returns when PID 1 has been exec'd (setup errors are reported
 * with the step that failed), not when the agent is ready: read the hello on
 * sandbox_agent_fd(). Returns 0 or -errno with pv_error() set. */
int sandbox_start(const struct sandbox_config *cfg, struct sandbox **out);

/* Hard stop: SIGKILL to PID 1 (which takes the namespace with it), reap, stop the
 * console thread. Idempotent. The console log stays readable. */
void sandbox_kill(struct sandbox *sb);
/* --keep: forks a keeper process (own session) that holds the agent socket and console
 * open, so the sandbox outlives this process; sandbox_kill/free then only let go of it.
 * Started with .keepable (else PDEATHSIG kills it when we exit). Returns the keeper's
 * pid or -errno. Reach the sandbox with `nsenter -t <pid> -a -r -w`; killing its PID 1
 * ends it and then the keeper. console_path (or NULL) gets the console so far and then
 * everything it says. */
pid_t sandbox_keep(struct sandbox *sb, const char *console_path);
/* sandbox_kill + free everything. NULL is fine. */
void sandbox_free(struct sandbox *sb);

int sandbox_agent_fd(const struct sandbox *sb);   /* host end of the socketpair; -1 after kill */
pid_t sandbox_pid(const struct sandbox *sb);      /* PID 1 of the sandbox, host view */
const char *sandbox_rootfs(const struct sandbox *sb);
/* true when the sandbox has its own (identity-mapped) user namespace; false when the
 * host did not allow one or PROVIUM_SANDBOX_USERNS=0. */
bool sandbox_userns(const struct sandbox *sb);
/* Non-blocking reap. Returns true once PID 1 has exited; *status (may be NULL) gets its
 * wait status. */
bool sandbox_exited(struct sandbox *sb, int *status);

/* A new agent connection (Workers): another agent process in the sandbox serving a
 * fresh socketpair. Returns the host end (non-blocking, close-on-exec) or -errno. */
int sandbox_connect(struct sandbox *sb);
/* The same for a sandbox known only by its PID 1 (a kept one, `provium shell`). */
int sandbox_connect_pid(pid_t pid1, bool userns, const char *name);

/* pause/resume: SIGSTOP/SIGCONT every process of the sandbox's pid namespace. */
int sandbox_pause(struct sandbox *sb);
int sandbox_resume(struct sandbox *sb);

/* Console. Positions count every byte ever printed; the ring keeps the last
 * SANDBOX_CONSOLE_SIZE bytes. */
uint64_t sandbox_console_pos(struct sandbox *sb);
/* Copies up to n bytes printed since *pos into buf and advances *pos (jumping forward if
 * the ring dropped older bytes). Returns the byte count (0: nothing new). */
size_t sandbox_console_read(struct sandbox *sb, uint64_t *pos, char *buf, size_t n);
/* true when the console reached EOF (PID 1 and everything holding it exited). */
bool sandbox_console_eof(struct sandbox *sb);
/* Writes console input (the init's stdin). Returns bytes written or -errno. */
ssize_t sandbox_console_write(struct sandbox *sb, const void *data, size_t len);

/* The rootfs used when none is configured: $PROVIUM_ROOTFS, else rootfs/ next to the
 * running binary (build/rootfs), else $PROVIUM_BUILD/rootfs. NULL if none exists. */
const char *sandbox_default_rootfs(void);

#endif
