/* report_tap.c — TAP version 13 on the report stream: "ok N - file: test",
 * "# SKIP reason", "# TODO reason", failure details as "# " comment lines, a file
 * error as one "not ok", and the plan at the end. */
#include "runner/report.h"

#include <stdlib.h>
#include <string.h>

struct tap {
	struct reporter r;
	unsigned n;
};

/* TAP descriptions are one line, and '#' starts a directive: keep both out. */
static void put_desc(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s == '#' ? '_' : *s, f);
}

static void put_comment(FILE *f, const char *label, const char *text)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(f, "# %s%.*s\n", label, (int)len, p);
		label = p == text ? "  " : label;
		p += len + (nl ? 1 : 0);
	}
}

static void tap_event(struct reporter *r, const msgpack_object *ev)
{
	struct tap *t = (struct tap *)r;
	FILE *f = r->cfg.out;
	char kind[32], file[1024], test[1024], outcome[16], msg[4096], where[1024];
	ev_kind(ev, kind, sizeof(kind));
	if (!strcmp(kind, "test_end")) {
		if (!ev_str(ev, "file", file, sizeof(file)))
			strcpy(file, "?");
		if (!ev_str(ev, "test", test, sizeof(test)))
			strcpy(test, "?");
		if (!ev_str(ev, "outcome", outcome, sizeof(outcome)))
			strcpy(outcome, "error");
		const char *m = ev_str(ev, "message", msg, sizeof(msg));
		const char *w = ev_str(ev, "where", where, sizeof(where));
		bool ok = !strcmp(outcome, "pass") || !strcmp(outcome, "skip");
		fprintf(f, "%s %u - ", ok ? "ok" : "not ok", ++t->n);
		put_desc(f, file);
		fputs(": ", f);
		put_desc(f, test);
		if (!strcmp(outcome, "skip") || !strcmp(outcome, "todo")) {
			fputs(!strcmp(outcome, "skip") ? " # SKIP" : " # TODO", f);
			if (m) {
				fputc(' ', f);
				put_desc(f, m);
			}
			fputc('\n', f);
		} else {
			fputc('\n', f);
			if (!ok) {
				put_comment(f, strcmp(outcome, "fail") ? "error: " : "", m ? m : outcome);
				if (w)
					fprintf(f, "# at %s\n", w);
			}
		}
	} else if (!strcmp(kind, "file_end") && ev_str(ev, "error", msg, sizeof(msg))) {
		if (!ev_str(ev, "file", file, sizeof(file)))
			strcpy(file, "?");
		fprintf(f, "not ok %u - ", ++t->n);
		put_desc(f, file);
		fputs(" (file error)\n", f);
		put_comment(f, "", msg);
	} else if (!strcmp(kind, "test_log") && r->cfg.verbose > 0 &&
		   ev_str(ev, "text", msg, sizeof(msg))) {
		put_comment(f, "log: ", msg);
	}
	fflush(f);
}

static int tap_finish(struct reporter *r)
{
	struct tap *t = (struct tap *)r;
	if (t->n == 0)
		fprintf(r->cfg.out, "1..0 # no test matched the selection\n");
	else
		fprintf(r->cfg.out, "1..%u\n", t->n);
	fflush(r->cfg.out);
	return 0;
}

static void tap_destroy(struct reporter *r)
{
	free(r);
}

struct reporter *report_tap_new(const struct report_cfg *cfg)
{
	struct tap *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->r = (struct reporter){.event = tap_event, .finish = tap_finish,
				 .destroy = tap_destroy, .cfg = *cfg};
	fprintf(cfg->out, "TAP version 13\n");
	return &t->r;
}
