/* cmd_events_merge.c — `provium events merge`: puts the event streams of the shards
 * of one suite (`provium run --shard K/N --events shard-K.mp` on N CI jobs) together
 * into one run: one run_start, every shard's file and test events in shard order,
 * one run_end with the totals, reported like a run (pretty, tap, junit, json) and
 * optionally written as a merged stream and a JUnit file (docs/ci.md). */
#include "runner/commands.h"
#include "runner/events.h"
#include "runner/options.h"
#include "runner/report.h"
#include "runner/runctx.h"
#include "agent/proto.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What pass one learns about each input stream. */
struct shard {
	const char *path;
	char *data;
	size_t len;
	uint64_t nevents;
	int64_t v;
	bool has_end, interrupted;
	uint64_t t_start, t_end, duration_ns;
	int exit_code;
	int k, n;              /* its --shard K/N, 0/0 when it was not sharded */
	uint64_t jobs, seed;
	char backend[32];
	msgpack_unpacked start; /* its run_start, kept for the merged one */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: provium events merge [-o FILE] [--junit FILE] [--format F] [--partial] [-q|-v]\n"
		"                            [--no-color] SHARD.mp...\n"
		"Merges the event streams of the shards of one suite (provium run --shard K/N\n"
		"--events FILE) into one run and reports it like `provium run` would.\n"
		"  -o, --output FILE  write the merged event stream to FILE (- for stdout)\n"
		"  --junit FILE       also write the merged JUnit XML to FILE\n"
		"  --format F         pretty|tap|junit|json: the report on stdout (default pretty)\n"
		"  --partial          merge even when shards of --shard K/N are missing (named on\n"
		"                     stderr); without it a missing shard is an error\n"
		"  -q, -v             failures and the summary only / test logs too\n"
		"Exit code: as `provium run` for the whole suite (0 passed, 1 a test failed,\n"
		"4 no test ran, 130 a shard was interrupted or its stream has no run_end),\n"
		"2 for bad input (unreadable, not an event stream, a shard given twice or\n"
		"missing).\n");
}

/* "--shard K/N" or "--shard=K/N" in a run_start's argv. */
static void shard_of(const msgpack_object *start, int *k, int *n)
{
	*k = *n = 0;
	const msgpack_object *argv = ev_get(start, "argv");
	if (!argv || argv->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < argv->via.array.size; i++) {
		const msgpack_object *a = &argv->via.array.ptr[i];
		if (a->type != MSGPACK_OBJECT_STR)
			continue;
		char buf[64] = "";
		size_t len = a->via.str.size < sizeof(buf) - 1 ? a->via.str.size : sizeof(buf) - 1;
		memcpy(buf, a->via.str.ptr, len);
		const char *val = NULL;
		if (!strncmp(buf, "--shard=", 8)) {
			val = buf + 8;
		} else if (!strcmp(buf, "--shard") && i + 1 < argv->via.array.size &&
			   argv->via.array.ptr[i + 1].type == MSGPACK_OBJECT_STR) {
			const msgpack_object *b = &argv->via.array.ptr[i + 1];
			len = b->via.str.size < sizeof(buf) - 1 ? b->via.str.size : sizeof(buf) - 1;
			memcpy(buf, b->via.str.ptr, len);
			buf[len] = 0;
			val = buf;
		}
		if (val && sscanf(val, "%d/%d", k, n) != 2)
			*k = *n = 0;
	}
}

/* Pass one over one stream: every event parses, the first is run_start; remembers
 * what the merged run_start and run_end need. */
static int scan(struct shard *s)
{
	int rc = pv_read_file(s->path, &s->data, &s->len);
	if (rc < 0)
		return rc;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	msgpack_unpack_return ret;
	while ((ret = msgpack_unpack_next(&u, s->data, s->len, &off)) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *ev = &u.data;
		char kind[32];
		if (ev->type != MSGPACK_OBJECT_MAP) {
			rc = pv_error(EINVAL, "%s: event %llu is not a map: not a provium event stream",
				      s->path, (unsigned long long)s->nevents + 1);
			goto out;
		}
		ev_kind(ev, kind, sizeof(kind));
		if (s->nevents++ == 0) {
			if (strcmp(kind, "run_start")) {
				rc = pv_error(EINVAL, "%s: the first event is '%s', not run_start: not "
					      "the stream of a `provium run --events`", s->path, kind);
				goto out;
			}
			s->v = ev_int(ev, "v", -1);
			s->t_start = (uint64_t)ev_int(ev, "t", 0);
			s->jobs = (uint64_t)ev_int(ev, "jobs", 0);
			s->seed = (uint64_t)ev_int(ev, "seed", 0);
			if (!ev_str(ev, "backend", s->backend, sizeof(s->backend)))
				s->backend[0] = 0;
			shard_of(ev, &s->k, &s->n);
			/* keep it: unpack it again into its own zone */
			size_t o2 = 0;
			msgpack_unpack_next(&s->start, s->data, s->len, &o2);
		} else if (!strcmp(kind, "run_start")) {
			rc = pv_error(EINVAL, "%s: a second run_start (event %llu): one run per file",
				      s->path, (unsigned long long)s->nevents);
			goto out;
		} else if (!strcmp(kind, "run_end")) {
			s->has_end = true;
			s->t_end = (uint64_t)ev_int(ev, "t", 0);
			s->duration_ns = (uint64_t)ev_int(ev, "duration_ns", 0);
			s->interrupted = ev_bool(ev, "interrupted", false);
			s->exit_code = (int)ev_int(ev, "exit_code", 0);
		}
	}
	if (ret == MSGPACK_UNPACK_PARSE_ERROR)
		rc = pv_error(EINVAL, "%s: not a msgpack event stream after %llu events", s->path,
			      (unsigned long long)s->nevents);
	else if (s->nevents == 0)
		rc = pv_error(EINVAL, "%s: empty: no events", s->path);
	else if (off < s->len && !s->has_end)
		pv_log("events merge: %s: the last event is truncated; the run did not finish "
		       "(counted as interrupted)", s->path);
	else if (!s->has_end)
		pv_log("events merge: %s: no run_end; the run did not finish (counted as "
		       "interrupted)", s->path);
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* Pass two: every event but run_start/run_end, as it was (the sink renumbers seq). */
static void replay(struct runctx *rc, const struct shard *s)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	while (msgpack_unpack_next(&u, s->data, s->len, &off) == MSGPACK_UNPACK_SUCCESS) {
		char kind[32];
		ev_kind(&u.data, kind, sizeof(kind));
		if (strcmp(kind, "run_start") && strcmp(kind, "run_end"))
			ev_sink_emit(&rc->sink, &u.data);
	}
	msgpack_unpacked_destroy(&u);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	ev_pack_str(pk, s);
}

/* The merged run_start: the merge's own argv, every shard's files, jobs summed, the
 * shards' backend (or "mixed"), the first shard's seed, and `shards` (an extra field
 * readers may ignore): each input's path, argv, backend and seed. */
static void emit_start(struct runctx *rc, struct shard *sh, int nsh, int argc, char **argv)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	uint64_t t = sh[0].t_start, jobs = 0;
	const char *backend = sh[0].backend;
	uint32_t nfiles = 0;
	for (int i = 0; i < nsh; i++) {
		if (sh[i].t_start < t)
			t = sh[i].t_start;
		jobs += sh[i].jobs;
		if (strcmp(sh[i].backend, backend))
			backend = "mixed";
		const msgpack_object *f = ev_get(&sh[i].start.data, "files");
		if (f && f->type == MSGPACK_OBJECT_ARRAY)
			nfiles += f->via.array.size;
	}
	msgpack_pack_map(&pk, 8);
	pack_str(&pk, "ev"); pack_str(&pk, "run_start");
	pack_str(&pk, "t"); msgpack_pack_uint64(&pk, t);
	pack_str(&pk, "argv");
	msgpack_pack_array(&pk, (size_t)argc + 2);
	pack_str(&pk, "provium");
	pack_str(&pk, "events");
	for (int i = 0; i < argc; i++)
		pack_str(&pk, argv[i]);
	pack_str(&pk, "jobs"); msgpack_pack_uint64(&pk, jobs);
	pack_str(&pk, "backend"); pack_str(&pk, backend);
	pack_str(&pk, "seed"); msgpack_pack_uint64(&pk, sh[0].seed);
	pack_str(&pk, "files");
	msgpack_pack_array(&pk, nfiles);
	for (int i = 0; i < nsh; i++) {
		const msgpack_object *f = ev_get(&sh[i].start.data, "files");
		if (f && f->type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t j = 0; j < f->via.array.size; j++)
				msgpack_pack_object(&pk, f->via.array.ptr[j]);
	}
	pack_str(&pk, "shards");
	msgpack_pack_array(&pk, (size_t)nsh);
	for (int i = 0; i < nsh; i++) {
		const msgpack_object *a = ev_get(&sh[i].start.data, "argv");
		msgpack_pack_map(&pk, 4);
		pack_str(&pk, "path"); pack_str(&pk, sh[i].path);
		pack_str(&pk, "argv");
		if (a)
			msgpack_pack_object(&pk, *a);
		else
			msgpack_pack_nil(&pk);
		pack_str(&pk, "backend"); pack_str(&pk, sh[i].backend);
		pack_str(&pk, "seed"); msgpack_pack_uint64(&pk, sh[i].seed);
	}
	ev_sink_emit_packed(&rc->sink, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

/* The whole suite's exit code: a shard that did not finish or could not run decides;
 * otherwise the merged tally does (so one empty shard, exit 4, does not). */
static int merged_exit(const struct shard *sh, int nsh, const struct tally *t)
{
	for (int i = 0; i < nsh; i++)
		if (!sh[i].has_end || sh[i].interrupted)
			return 130;
	for (int i = 0; i < nsh; i++)
		if (sh[i].exit_code == 2 || sh[i].exit_code == 3)
			return sh[i].exit_code;
	for (int i = 0; i < nsh; i++)
		if (sh[i].exit_code == 1)
			return 1;
	return runctx_exit_code(t, false);
}

/* Two inputs with the same --shard K/N would count its tests twice: refused. A
 * missing shard of one N is refused too (a CI job that never uploaded its stream
 * must not make the suite pass), unless partial: then it is named on stderr. */
static int check_shards(const struct shard *sh, int nsh, bool partial)
{
	for (int i = 0; i < nsh; i++)
		for (int j = 0; j < i; j++)
			if (sh[i].n && sh[i].k == sh[j].k && sh[i].n == sh[j].n)
				return pv_error(EINVAL, "%s and %s are both shard %d/%d: its tests "
						"would count twice", sh[j].path, sh[i].path, sh[i].k,
						sh[i].n);
	int n = sh[0].n;
	for (int i = 1; i < nsh; i++)
		if (sh[i].n != n)
			n = -1;
	if (n > 0) {
		for (int k = 1; k <= n; k++) {
			bool seen = false;
			for (int i = 0; i < nsh; i++)
				seen = seen || sh[i].k == k;
			if (!seen && !partial)
				return pv_error(ENOENT, "shard %d/%d is missing: give every shard's "
						"stream (or --partial to merge the ones there are)", k, n);
			if (!seen)
				pv_log("events merge: shard %d/%d is missing: its tests are not in the "
				       "merge", k, n);
		}
	}
	return 0;
}

int cmd_events_merge(int argc, char **argv)
{
	struct run_opts o = {.format = FMT_PRETTY};
	const char **paths = calloc((size_t)argc, sizeof(*paths));
	int npaths = 0, code = 2;
	bool partial = false;
	if (!paths) {
		fprintf(stderr, "provium events merge: out of memory\n");
		return 3;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			free(paths);
			return 0;
		} else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
			o.events = argv[++i];
		} else if (!strcmp(a, "--junit") && has_val) {
			o.junit = argv[++i];
		} else if (!strcmp(a, "--format") && has_val) {
			const char *f = argv[++i];
			if (!strcmp(f, "pretty")) o.format = FMT_PRETTY;
			else if (!strcmp(f, "tap")) o.format = FMT_TAP;
			else if (!strcmp(f, "junit")) o.format = FMT_JUNIT;
			else if (!strcmp(f, "json")) o.format = FMT_JSON;
			else {
				fprintf(stderr, "provium events merge: --format: '%s' is not pretty, tap, "
					"junit or json\n", f);
				goto out;
			}
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			o.verbose = -1;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o.verbose++;
		} else if (!strcmp(a, "--no-color")) {
			o.no_color = true;
		} else if (!strcmp(a, "--partial")) {
			partial = true;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "provium events merge: unknown option or missing value: '%s'\n", a);
			usage(stderr);
			goto out;
		} else {
			paths[npaths++] = a;
		}
	}
	if (npaths == 0) {
		fprintf(stderr, "provium events merge: no event streams to merge\n");
		usage(stderr);
		goto out;
	}
	if (getenv("NO_COLOR"))
		o.no_color = true;

	struct shard *sh = calloc((size_t)npaths, sizeof(*sh));
	if (!sh) {
		code = 3;
		goto out;
	}
	int err = 0;
	for (int i = 0; i < npaths && !err; i++) {
		sh[i].path = paths[i];
		msgpack_unpacked_init(&sh[i].start);
		err = scan(&sh[i]);
		if (!err && sh[i].v != PROTOCOL_VERSION)
			err = pv_error(EPROTO, "%s: event stream version %lld; this provium reads "
				       "version %d", sh[i].path, (long long)sh[i].v, PROTOCOL_VERSION);
	}
	if (!err)
		err = check_shards(sh, npaths, partial);
	if (err) {
		fprintf(stderr, "provium events merge: %s\n", pv_errmsg());
	} else {
		struct runctx rc;
		if (runctx_open(&rc, &o, false) < 0) {
			fprintf(stderr, "provium events merge: %s\n", pv_errmsg());
		} else {
			emit_start(&rc, sh, npaths, argc, argv);
			for (int i = 0; i < npaths; i++)
				replay(&rc, &sh[i]);
			struct ev_run_end e = {.c = rc.tally.c};
			for (int i = 0; i < npaths; i++) {
				if (sh[i].t_end > e.t)
					e.t = sh[i].t_end;
				if (sh[i].duration_ns > e.duration_ns)
					e.duration_ns = sh[i].duration_ns; /* the shards ran side by side */
				e.interrupted = e.interrupted || sh[i].interrupted || !sh[i].has_end;
			}
			if (!e.t)
				e.t = pv_wall_ns();
			e.exit_code = merged_exit(sh, npaths, &rc.tally);
			code = runctx_finish(&rc, &e);
		}
		runctx_close(&rc);
	}
	for (int i = 0; i < npaths; i++) {
		msgpack_unpacked_destroy(&sh[i].start);
		free(sh[i].data);
	}
	free(sh);
out:
	free(paths);
	return code;
}
