/* worker.h — the boundary between the runner's parent process (runner/: CLI,
 * scheduling, events file, reporters, claims and barriers) and the worker process
 * that runs one test file (lua/: the Lua state, the test library, the provium API).
 *
 * `provium run` forks one worker per test file (at most -j at a time). The parent
 * and the worker share a SOCK_SEQPACKET socketpair; each message is one packet
 * holding one msgpack map (no length prefix needed). Worker -> parent:
 *
 *   {k="event", ev={ev="test_start", file=..., ...}}
 *        one event of RUNNER.md without v/seq (the parent adds v and seq; the worker
 *        sets t = unix ns when it happened). Internal-only kinds, never written to
 *        the public stream: ev="test_listed" {file, test, meta} (list mode).
 *   {k="claim", id=n, resource=s, count=n, capacity=n}   reply when acquired
 *   {k="release", resource=s, count=n}                   no reply
 *   {k="barrier", id=n, name=s, parties=n}               reply when released
 *   {k="interactive", on=b}   a person is at the keyboard (vm:shell, the prompt):
 *        no hang detection, nothing drawn over the terminal; no reply
 *   {k="sync", id=n}          reply once everything sent before was handled (the
 *        prompt's run() waits so the report is out before the next prompt)
 *   {k="detach", netns=b}     last message, after file_end (--keep kept kvm VMs): the
 *        worker goes on as their holder (lua/kvm_keep.c) and closes the channel; the
 *        parent treats it as exited 0 and neither waits for nor kills it; netns: its
 *        VMs' bridges are in the run's network namespace, which then stays
 *
 * Parent -> worker:
 *   {k="reply", id=n, ok=true, index=n}    (index: barrier arrival index, 1-based)
 *   {k="reply", id=n, ok=false, message=s}
 *
 * The worker emits claim/barrier events itself (they carry its file name). The
 * parent releases every claim a worker held when the worker exits, and fails its
 * pending barrier waits.
 *
 * Exit status of the worker: 0 the file ran (whatever its tests' outcomes); 1 the
 * file failed to load (a file_end with error was sent); anything else, or a signal,
 * is a crash the parent reports as a file error. The worker puts itself and all its
 * children (sandboxes, VMs) in its own process group; the parent kills that group
 * when the worker dies or on SIGINT/SIGTERM (first SIGTERM, then SIGKILL after 5 s).
 */
#ifndef PROVIUM_WORKER_H
#define PROVIUM_WORKER_H

#include <stdbool.h>
#include <stdint.h>

struct worker_args {
	const char *file;          /* test file path */
	int chan_fd;               /* the SOCK_SEQPACKET end */
	bool list_only;            /* provium list: register tests, emit test_listed, run none */
	const char *filter;        /* -f: substring or Lua pattern on the test name, or NULL */
	const char *const *tags;   /* --tags (NULL-terminated) or NULL */
	const char *const *exclude_tags;
	bool slow;                 /* --slow */
	double timeout;            /* --timeout / PROVIUM_TIMEOUT; per test default 60 */
	bool timeout_set;          /* true when given on the command line/env (wins over meta? no: meta wins) */
	uint64_t seed;             /* --seed */
	bool shuffle;              /* --shuffle: shuffle test order with seed */
	const char *backend;       /* "auto" | "kvm" | "sandbox" */
	const char *cache_dir;     /* PROVIUM_CACHE_DIR resolved */
	const char *tmp_dir;       /* per-file temp dir the parent made and removes */
	bool keep;                 /* --keep */
	bool fail_fast;
	bool interactive;          /* --interactive: the prompt (lua/repl.lua), no test runs */
	bool pause_on_failure;     /* --pause-on-failure */
	int verbose;               /* -v count; -1 for -q */
	int jobs;
};

/* Runs in the forked child; returns the exit status for _exit(). Implemented in lua/runfile.c. */
int worker_main(const struct worker_args *a);

#endif
