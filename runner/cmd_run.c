/* cmd_run.c — `provium run`: select files, resolve the backend, run them in workers
 * (runner/sched.c), stream events (runner/events.c) to the reporters, and turn the
 * outcome into RUNNER.md's exit code. */
#include "runner/netns.h"
#include "runner/commands.h"
#include "runner/discover.h"
#include "runner/events.h"
#include "runner/hostcheck.h"
#include "runner/options.h"
#include "runner/report.h"
#include "runner/runctx.h"
#include "runner/sched.h"
#include "vmm/util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p, then a write probe: an unwritable cache is an infrastructure error. */
static int check_cache_dir(const char *dir)
{
	char *p = strdup(dir);
	if (!p)
		return pv_error(ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		mkdir(p, 0755);
		*s = '/';
	}
	int r = 0;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		r = pv_error(errno, "cache dir %s: %s", dir, strerror(errno));
	else if (access(p, W_OK | X_OK) < 0)
		r = pv_error(errno, "cache dir %s is not writable: %s", dir, strerror(errno));
	free(p);
	return r;
}

/* Per-file temp dirs go under $TMPDIR: make sure one can be made there. */
static int check_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *p;
	if (asprintf(&p, "%s/provium-XXXXXX", t && *t ? t : "/tmp") < 0)
		return pv_error(ENOMEM, "out of memory");
	int r = 0;
	if (!mkdtemp(p))
		r = pv_error(errno, "cannot make temp dirs in %s: %s", t && *t ? t : "/tmp",
			     strerror(errno));
	else
		rmdir(p);
	free(p);
	return r;
}

static void observe(void *ctx, const msgpack_object *pub)
{
	struct runctx *rc = ctx;
	tally_event(&rc->tally, pub);
	for (int i = 0; i < rc->nreps; i++)
		rc->reps[i]->event(rc->reps[i], pub);
}

static void on_event(void *ctx, const msgpack_object *ev)
{
	struct runctx *rc = ctx;
	ev_sink_emit(&rc->sink, ev);
}

static void on_tick(void *ctx)
{
	struct runctx *rc = ctx;
	for (int i = 0; i < rc->nreps; i++)
		if (rc->reps[i]->tick)
			rc->reps[i]->tick(rc->reps[i]);
}

static void on_interactive(void *ctx, bool on)
{
	struct runctx *rc = ctx;
	for (int i = 0; i < rc->nreps; i++)
		if (rc->reps[i]->hold)
			rc->reps[i]->hold(rc->reps[i], on);
}

int runctx_exit_code(const struct tally *t, bool interrupted)
{
	if (interrupted)
		return 130;
	if (t->c.failed || t->c.errors)
		return 1;
	if (t->tests_ended == 0)
		return 4;
	return 0;
}

int runctx_open(struct runctx *rc, const struct run_opts *o, bool list_mode)
{
	memset(rc, 0, sizeof(*rc));
	rc->tally.t0 = pv_now_ns();
	rc->t0_wall = pv_wall_ns();
	if (list_mode)
		return ev_sink_open(&rc->sink, NULL);
	int r = ev_sink_open(&rc->sink, o->events);
	if (r < 0)
		return r;
	rc->sink.observe = observe;
	rc->sink.ctx = rc;
	/* Machine output and an event stream on stdout cannot share it. */
	FILE *out = o->events && !strcmp(o->events, "-") ? stderr : stdout;
	struct report_cfg cfg = {
		.out = out, .tty = isatty(fileno(out)), .verbose = o->verbose, .tally = &rc->tally,
	};
	cfg.color = cfg.tty && !o->no_color;
	struct reporter *main_rep = NULL;
	switch (o->format) {
	case FMT_PRETTY: main_rep = report_pretty_new(&cfg); break;
	case FMT_TAP: main_rep = report_tap_new(&cfg); break;
	case FMT_JUNIT: main_rep = report_junit_new(&cfg, NULL); break;
	case FMT_JSON: main_rep = report_json_new(&cfg); break;
	}
	if (!main_rep)
		return pv_error(ENOMEM, "out of memory");
	rc->reps[rc->nreps++] = main_rep;
	if (o->junit) {
		/* fail now, not after the run, when the file cannot be written */
		FILE *f = fopen(o->junit, "a");
		if (!f)
			return pv_error(errno, "--junit %s: %s", o->junit, strerror(errno));
		fclose(f);
		struct reporter *j = report_junit_new(&cfg, o->junit);
		if (!j)
			return pv_error(ENOMEM, "out of memory");
		rc->reps[rc->nreps++] = j;
	}
	return 0;
}

void runctx_start(struct runctx *rc, const struct run_opts *o, const char *backend,
		  const struct file_list *fl)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	struct ev_run_start e = {
		.t = rc->t0_wall, .argc = o->argc + 1, .argv = rc->full_argv, .jobs = o->jobs,
		.backend = backend ? backend : o->backend, .seed = o->seed, .nfiles = fl ? fl->n : 0,
		.files = fl ? fl->v : NULL,
	};
	if (!rc->full_argv) {
		/* argv as typed: "provium" plus the subcommand's argv */
		static char prog[] = "provium";
		rc->full_argv = calloc((size_t)o->argc + 2, sizeof(char *));
		if (rc->full_argv) {
			rc->full_argv[0] = prog;
			for (int i = 0; i < o->argc; i++)
				rc->full_argv[i + 1] = o->argv[i];
		} else {
			e.argc = 0;
		}
		e.argv = rc->full_argv;
	}
	ev_pack_run_start(&pk, &e);
	ev_sink_emit_packed(&rc->sink, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

int runctx_end(struct runctx *rc, bool interrupted, int exit_code)
{
	struct ev_run_end e = {
		.t = pv_wall_ns(), .c = rc->tally.c, .duration_ns = pv_now_ns() - rc->tally.t0,
		.interrupted = interrupted, .exit_code = exit_code,
	};
	return runctx_finish(rc, &e);
}

int runctx_finish(struct runctx *rc, const struct ev_run_end *e)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ev_pack_run_end(&pk, e);
	ev_sink_emit_packed(&rc->sink, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	int exit_code = e->exit_code;
	for (int i = 0; i < rc->nreps; i++)
		if (rc->reps[i]->finish(rc->reps[i]) < 0) {
			pv_log("%s", pv_errmsg());
			if (exit_code == 0)
				exit_code = 3;
		}
	return exit_code;
}

void runctx_close(struct runctx *rc)
{
	for (int i = 0; i < rc->nreps; i++)
		rc->reps[i]->destroy(rc->reps[i]);
	rc->nreps = 0;
	free(rc->full_argv);
	rc->full_argv = NULL;
	ev_sink_close(&rc->sink);
}

void runctx_worker_args(struct worker_args *a, const struct run_opts *o, const char *backend)
{
	memset(a, 0, sizeof(*a));
	a->chan_fd = -1;
	a->filter = o->filter;
	a->tags = (const char *const *)o->tags;
	a->exclude_tags = (const char *const *)o->exclude_tags;
	a->slow = o->slow;
	a->timeout = o->timeout;
	a->timeout_set = o->timeout_set;
	a->seed = o->seed;
	a->shuffle = o->shuffle;
	a->backend = backend;
	a->cache_dir = o->cache_dir;
	a->keep = o->keep;
	a->fail_fast = o->fail_fast;
	a->interactive = o->interactive;
	a->pause_on_failure = o->pause_on_failure;
	a->verbose = o->verbose;
	a->jobs = o->jobs;
}

int runctx_select(const struct run_opts *o, struct file_list *fl)
{
	int r = discover_files(o->paths, o->npaths, fl);
	if (r < 0)
		return r;
	if (o->shard_n > 1)
		discover_shard(fl, o->shard_k, o->shard_n);
	if (o->shuffle)
		discover_shuffle(fl, o->seed);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct file_list fl = {0};
	struct runctx rc;
	char why[512] = "";
	int r = opts_parse(&o, argc, argv);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "provium run: %s\n(provium run --help lists the flags)\n", pv_errmsg());
		return 2;
	}
	/* A reader of --events - or of the report that goes away must not kill the run
	 * before run_end and the teardown: writes fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	if (runctx_select(&o, &fl) < 0) {
		fprintf(stderr, "provium run: %s\n", pv_errmsg());
		opts_free(&o);
		return 2;
	}
	if (runctx_open(&rc, &o, false) < 0) {
		fprintf(stderr, "provium run: %s\n", pv_errmsg());
		runctx_close(&rc);
		discover_free(&fl);
		opts_free(&o);
		return 2;
	}
	const char *backend = pv_resolve_backend(o.backend, why, sizeof(why));
	int code;
	if (!backend || check_cache_dir(o.cache_dir) < 0 || check_tmpdir() < 0) {
		/* infrastructure, before any test ran */
		fprintf(stderr, "provium run: %s\n", backend ? pv_errmsg() : why);
		runctx_start(&rc, &o, backend, &fl);
		code = runctx_end(&rc, false, 3);
		goto out;
	}
	if (why[0] && o.verbose >= 0)
		fprintf(stderr, "provium: %s\n", why);
	setenv("PROVIUM_CACHE_DIR", o.cache_dir, 1);
	runctx_start(&rc, &o, backend, &fl);
	if (fl.n == 0) {
		fprintf(stderr, "provium run: no test files (*_test.lua, test_*.lua) found\n");
		code = runctx_end(&rc, false, 4);
		goto out;
	}
	if (o.interactive && fl.n > 1) {
		fprintf(stderr, "provium run: --interactive takes one test file; %zu were selected (%s, %s, ...)\n",
			fl.n, fl.v[0], fl.v[1]);
		code = runctx_end(&rc, false, 2);
		goto out;
	}
	struct sched_cfg sc = {
		.files = fl.v, .nfiles = fl.n, .jobs = o.jobs, .fail_fast = o.fail_fast,
		.on_event = on_event, .on_tick = on_tick,
		.on_interactive = on_interactive, .ctx = &rc,
	};
	runctx_worker_args(&sc.base, &o, backend);
	struct sched_result res;
	netns_run_init(); /* names the run's network namespace; removed below */
	r = sched_run(&sc, &res);
	/* after every worker is gone, also after crashes/SIGINT; a kept kvm VM's bridges
	 * stay in it until the VM goes (runner/kept.c) */
	if (r < 0 || !res.kept_netns)
		netns_run_cleanup();
	if (r < 0) {
		fprintf(stderr, "provium run: %s\n", pv_errmsg());
		code = runctx_end(&rc, false, 3);
		goto out;
	}
	code = runctx_exit_code(&rc.tally, res.interrupted);
	if (code == 4 && o.interactive)
		code = 0; /* no test was run at the prompt: nothing failed */
	else if (code == 4)
		fprintf(stderr, "provium run: no test matched the selection\n");
	code = runctx_end(&rc, res.interrupted, code);
out:
	runctx_close(&rc);
	discover_free(&fl);
	opts_free(&o);
	return code;
}
