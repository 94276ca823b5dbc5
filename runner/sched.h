/* sched.h — runs test files in forked workers, at most `jobs` at a time
 * (runner/worker.h): one SOCK_SEQPACKET socketpair and one temp dir per file,
 * events forwarded in order, claims and barriers arbitrated, crashed workers
 * reported as file errors, SIGINT/SIGTERM tearing every worker's process group down. */
#ifndef PROVIUM_SCHED_H
#define PROVIUM_SCHED_H

#include "runner/worker.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

/* What a forked worker runs: worker_main() (lua/runfile.c); unit tests swap in fakes. */
typedef int (*sched_worker_fn)(const struct worker_args *a);
extern sched_worker_fn sched_worker_entry;

struct sched_cfg {
	struct worker_args base; /* per file: file, chan_fd and tmp_dir are filled in */
	char *const *files;
	size_t nfiles;
	int jobs;
	bool fail_fast;          /* start no more files after a failure */
	/* Every event in order, worker-shaped (no v/seq): the parent's file_start, a
	 * crashed file's test_end/file_end, and everything workers send. */
	void (*on_event)(void *ctx, const msgpack_object *ev);
	void (*on_tick)(void *ctx); /* a few times a second while files run */
	/* a worker's interactive session (vm:shell, the prompt) began (on) or ended:
	 * draw nothing over the terminal meanwhile. May be NULL. */
	void (*on_interactive)(void *ctx, bool on);
	void *ctx;
	double kill_grace;       /* seconds between SIGTERM and SIGKILL on interrupt; 0: 5 */
	/* A test still running this long after its timeout (meta timeout, else
	 * base.timeout) means the worker is stuck where its own timeout cannot reach: the
	 * parent kills it and reports the test as an error. 0: 30 s. */
	double hang_grace;
};

struct sched_result {
	size_t files_started;
	size_t file_errors;      /* files whose file_end carried an error */
	size_t failures;         /* tests that failed or errored */
	bool interrupted;
	bool stopped;            /* --fail-fast stopped scheduling */
	bool kept_netns;         /* a worker holding kept kvm VMs has bridges in the run's
				  * network namespace: it stays (runner/kept.c removes it) */
};

/* Returns 0, or -errno when the run could not start at all (message in pv_errmsg()). */
int sched_run(const struct sched_cfg *cfg, struct sched_result *res);
/* Async-signal-safe: interrupt the current run as SIGINT does. */
void sched_interrupt(void);
/* rm -rf; used for per-file temp dirs. */
int sched_rmtree(const char *path);

#endif
