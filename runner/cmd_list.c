/* cmd_list.c — `provium list`: runs every selected file's worker in list mode
 * (worker_args.list_only: tests are registered, none run) and prints the files and
 * their tests with meta, from the workers' test_listed events. Same selection flags
 * as `provium run`; `--format json` prints one JSON object per test. */
#include "runner/commands.h"
#include "runner/hostcheck.h"
#include "runner/report.h"
#include "runner/runctx.h"
#include "runner/sched.h"
#include "vmm/util.h"

#include <stdlib.h>
#include <string.h>

struct listed {
	struct file_list *fl;
	char **text;   /* per file, what to print */
	size_t *len;
	FILE **f;
	size_t tests, errors;
	bool json;
};

static size_t file_index(struct listed *l, const char *file)
{
	for (size_t i = 0; i < l->fl->n; i++)
		if (!strcmp(l->fl->v[i], file))
			return i;
	return (size_t)-1;
}

/* Writes o (NULL: nothing) as one compact JSON line and drops it. */
static void put_json_line(FILE *f, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (s)
		fprintf(f, "%s\n", s);
	free(s);
	json_decref(o);
}

static void on_event(void *ctx, const msgpack_object *ev)
{
	struct listed *l = ctx;
	char kind[32], file[1024], test[1024], err[4096];
	ev_kind(ev, kind, sizeof(kind));
	if (!ev_str(ev, "file", file, sizeof(file)))
		return;
	size_t i = file_index(l, file);
	if (i == (size_t)-1 || (!l->f[i] && !(l->f[i] = open_memstream(&l->text[i], &l->len[i]))))
		return;
	if (!strcmp(kind, "test_listed") && ev_str(ev, "test", test, sizeof(test))) {
		l->tests++;
		const msgpack_object *meta = ev_get(ev, "meta");
		json_t *m = meta ? report_mp_to_json(meta) : json_object();
		if (l->json) {
			put_json_line(l->f[i], json_pack("{s:s, s:s, s:O}", "file", file, "test", test,
							 "meta", m));
		} else {
			char *s = json_object_size(m) ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			fprintf(l->f[i], "  %s%s%s\n", test, s ? "  " : "", s ? s : "");
			free(s);
		}
		json_decref(m);
	} else if (!strcmp(kind, "file_end") && ev_str(ev, "error", err, sizeof(err))) {
		l->errors++;
		if (l->json) {
			put_json_line(l->f[i], json_pack("{s:s, s:s}", "file", file, "error", err));
		} else {
			fprintf(l->f[i], "  FILE ERROR: %s\n", err);
		}
	}
}

int cmd_list(int argc, char **argv)
{
	struct run_opts o;
	struct file_list fl = {0};
	char why[512] = "";
	int code = 0;
	int r = opts_parse(&o, argc, argv);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "provium list: %s\n(provium list --help lists the flags)\n", pv_errmsg());
		return 2;
	}
	if (o.format != FMT_PRETTY && o.format != FMT_JSON) {
		fprintf(stderr, "provium list: --format must be pretty or json\n");
		opts_free(&o);
		return 2;
	}
	if (runctx_select(&o, &fl) < 0) {
		fprintf(stderr, "provium list: %s\n", pv_errmsg());
		opts_free(&o);
		return 2;
	}
	const char *backend = pv_resolve_backend(o.backend, why, sizeof(why));
	struct listed l = {
		.fl = &fl, .text = calloc(fl.n + 1, sizeof(char *)), .len = calloc(fl.n + 1, sizeof(size_t)),
		.f = calloc(fl.n + 1, sizeof(FILE *)), .json = o.format == FMT_JSON,
	};
	if (!l.text || !l.len || !l.f) {
		fprintf(stderr, "provium list: out of memory\n");
		code = 3;
		goto out;
	}
	struct sched_cfg sc = {
		.files = fl.v, .nfiles = fl.n, .jobs = o.jobs, .on_event = on_event, .ctx = &l,
	};
	runctx_worker_args(&sc.base, &o, backend ? backend : "sandbox");
	sc.base.list_only = true;
	struct sched_result res;
	if (fl.n && sched_run(&sc, &res) < 0) {
		fprintf(stderr, "provium list: %s\n", pv_errmsg());
		code = 3;
		goto out;
	}
	for (size_t i = 0; i < fl.n; i++) {
		if (!l.json)
			printf("%s\n", fl.v[i]);
		if (l.f[i]) {
			fclose(l.f[i]);
			l.f[i] = NULL;
			fwrite(l.text[i], 1, l.len[i], stdout);
		}
	}
	if (!l.json)
		printf("%zu test%s in %zu file%s\n", l.tests, l.tests == 1 ? "" : "s", fl.n,
		       fl.n == 1 ? "" : "s");
	code = fl.n && res.interrupted ? 130 : l.errors || (fl.n && res.file_errors) ? 1
		: l.tests == 0 ? 4 : 0;
out:
	for (size_t i = 0; l.f && i < fl.n; i++) {
		if (l.f[i])
			fclose(l.f[i]);
		free(l.text[i]);
	}
	free(l.text);
	free(l.len);
	free(l.f);
	discover_free(&fl);
	opts_free(&o);
	return code;
}
