/* runctx.h — one run's plumbing shared by `provium run` and `provium list`: file
 * selection, the event sink with its reporters and tally, run_start/run_end, and the
 * worker arguments derived from the flags. */
#ifndef PROVIUM_RUNCTX_H
#define PROVIUM_RUNCTX_H

#include "runner/discover.h"
#include "runner/events.h"
#include "runner/options.h"
#include "runner/report.h"
#include "runner/worker.h"

struct runctx {
	struct ev_sink sink;
	struct tally tally;
	struct reporter *reps[2];
	int nreps;
	uint64_t t0_wall;
	char **full_argv;
};

/* Discovery + --shard + --shuffle. */
int runctx_select(const struct run_opts *o, struct file_list *fl);
/* Opens the events stream and the reporters (none in list mode). */
int runctx_open(struct runctx *rc, const struct run_opts *o, bool list_mode);
void runctx_start(struct runctx *rc, const struct run_opts *o, const char *backend,
		  const struct file_list *fl);
/* Emits run_end, finishes the reporters; returns the exit code (3 when a report
 * could not be written and the run otherwise passed). */
int runctx_end(struct runctx *rc, bool interrupted, int exit_code);
/* The same with a run_end the caller filled in (`provium events merge`). */
int runctx_finish(struct runctx *rc, const struct ev_run_end *e);
void runctx_close(struct runctx *rc);
void runctx_worker_args(struct worker_args *a, const struct run_opts *o, const char *backend);
/* RUNNER.md exit codes from the tally: 130, 1, 4 or 0. */
int runctx_exit_code(const struct tally *t, bool interrupted);

#endif
