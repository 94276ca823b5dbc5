/* kept.h — the registry of kept VMs (`provium run --keep`, runner/kept.c): one JSON file
 * per kept VM in a directory of this user's, which `provium ps|shell|console|kill` read.
 * docs/debugging.md, "Kept VMs". */
#ifndef PROVIUM_KEPT_H
#define PROVIUM_KEPT_H
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct pv_kept {
	char name[128];
	char backend[16];
	pid_t pid;                      /* the VM: the sandbox's PID 1 (host view) */
	pid_t keeper;                   /* the process holding it, or 0 */
	bool userns;                    /* the sandbox has a user namespace of its own */
	unsigned long long starttime;   /* of pid (/proc/PID/stat field 22): a reused pid is not it */
	double since;                   /* when it was kept, seconds since the epoch */
	char file[PATH_MAX];            /* the test file */
	char tmp[PATH_MAX];             /* its worker's temp dir, kept with it, or "" */
	char netns[64];                 /* the run's network namespace its bridges are in, or "" */
};

/* The directory: $PROVIUM_KEPT_DIR, else /run/provium/kept for root, else
 * $XDG_RUNTIME_DIR/provium/kept, else /tmp/provium-UID/kept. Created (0700) when
 * create is true. Returns buf, or NULL (pv_errmsg). */
const char *pv_kept_dir(char *buf, size_t n, bool create);
/* Its files for one VM: DIR/KEY.json, DIR/KEY.console (the console, as the keeper
 * writes it) and, for a kvm VM, DIR/KEY.sock (its holder's socket, runner/kept.h
 * "kvm"). KEY is the pid for a sandbox, PID-NAME for a kvm VM (one holder, the worker
 * that ran its file, may hold several). */
void pv_kept_path(char *buf, size_t n, const char *dir, const struct pv_kept *k, const char *ext);
/* The start time of pid, 0 when it does not exist. */
unsigned long long pv_kept_starttime(pid_t pid);
/* Records k (written whole, then renamed into place). 0 or -errno. */
int pv_kept_add(const struct pv_kept *k);
/* Every kept VM still running, oldest first (*out malloc'd; free it). Entries whose VM
 * is gone (its pid dead or reused) are removed on the way: the stale-run reaper. */
int pv_kept_list(struct pv_kept **out, size_t *n);
/* The kept VM a user named: its name, or its pid. 0, or -ENOENT / -EEXIST (several
 * of that name) with a message saying what to type instead (pv_errmsg). */
int pv_kept_find(const char *spec, struct pv_kept *out);
/* Forgets k's entry, console and socket, its temp dir once no other kept VM has it,
 * and the run's network namespace (netns) once no other kept VM is in it. */
void pv_kept_remove(const struct pv_kept *k);

/* A kept kvm VM lives in its worker, which became its holder (lua/kvm_keep.c): it
 * listens on DIR/KEY.sock. A client connects and sends one byte: */
#define PV_KEPT_SHELL 's'  /* reply: 'o' with a fresh agent connection fd (SCM_RIGHTS),
			    * or 'e' and a message */
#define PV_KEPT_KILL  'k'  /* the holder stops that VM, forgets it, replies 'o' (and
			    * exits once it holds no VM) */
/* Connects to k's holder, sends cmd and reads the reply: for PV_KEPT_SHELL returns the
 * fd, for PV_KEPT_KILL 0; -errno with pv_errmsg() naming the VM. */
int pv_kept_ask(const struct pv_kept *k, char cmd);
#endif
