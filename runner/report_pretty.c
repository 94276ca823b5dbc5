/* report_pretty.c — human output: a block per file (printed when the file ends, so
 * parallel files do not interleave) with one line per test, failure messages with
 * file:line, a summary, and on a terminal a live status line (files done/total,
 * tests passed/failed, VMs running, elapsed). Colour unless NO_COLOR/--no-color or
 * not a terminal. -q: failures and the summary only; -v: test logs too. */
#include "runner/report.h"
#include "vmm/util.h"

#include <stdlib.h>
#include <string.h>

struct fbuf {
	struct fbuf *next;
	char *file;
	char *text;
	size_t len;
	FILE *f;
};

struct pretty {
	struct reporter r;
	struct fbuf *files;
	bool status_shown;
	bool held;    /* a prompt or shell is on the terminal: no status line (hold) */
	bool stream;  /* one file at a time (-j1 or one file): lines as they happen */
	char *hdr;    /* stream mode: the file whose header line was printed last */
};

#define C(p, code) ((p)->r.cfg.color ? (code) : "")
#define RED "\033[31m"
#define GREEN "\033[32m"
#define YELLOW "\033[33m"
#define BLUE "\033[34m"
#define DIM "\033[2m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

static struct fbuf *fbuf_of(struct pretty *p, const char *file, bool create)
{
	for (struct fbuf *b = p->files; b; b = b->next)
		if (!strcmp(b->file, file))
			return b;
	if (!create)
		return NULL;
	struct fbuf *b = calloc(1, sizeof(*b));
	if (!b || !(b->file = strdup(file)) || !(b->f = open_memstream(&b->text, &b->len))) {
		if (b)
			free(b->file);
		free(b);
		return NULL;
	}
	b->next = p->files;
	p->files = b;
	return b;
}

static void clear_status(struct pretty *p)
{
	if (p->status_shown) {
		fputs("\r\033[K", p->r.cfg.out);
		p->status_shown = false;
	}
}

static void draw_status(struct pretty *p)
{
	const struct tally *t = p->r.cfg.tally;
	if (!p->r.cfg.tty || p->r.cfg.verbose < 0 || !t || p->held)
		return;
	char el[32];
	report_fmt_duration(el, sizeof(el), pv_now_ns() - t->t0);
	fprintf(p->r.cfg.out, "\r\033[K%s[%llu/%llu files] %llu passed, %llu failed, %d VM%s running, %s%s",
		C(p, DIM), (unsigned long long)t->files_done, (unsigned long long)t->files_total,
		(unsigned long long)t->c.passed, (unsigned long long)(t->c.failed + t->c.errors),
		t->vms_running, t->vms_running == 1 ? "" : "s", el, C(p, RESET));
	fflush(p->r.cfg.out);
	p->status_shown = true;
}

/* Where a file's lines go: straight out when files cannot interleave, else the
 * file's buffer (printed at its file_end). */
static void header(struct pretty *p, const char *file)
{
	if (p->hdr && !strcmp(p->hdr, file))
		return;
	free(p->hdr);
	p->hdr = strdup(file);
	clear_status(p);
	fprintf(p->r.cfg.out, "%s%s%s\n", C(p, BOLD), file, C(p, RESET));
}

static FILE *dest(struct pretty *p, const char *file)
{
	if (p->stream) {
		clear_status(p); /* the line goes where the status line was, not after it */
		header(p, file);
		return p->r.cfg.out;
	}
	struct fbuf *b = fbuf_of(p, file, true);
	return b ? b->f : NULL;
}

/* Indents every line of text by `ind` spaces. */
static void put_indented(FILE *f, const char *text, int ind)
{
	const char *s = text;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		fprintf(f, "%*s%.*s\n", ind, "", (int)len, s);
		s += len + (nl ? 1 : 0);
	}
}

static void on_test_end(struct pretty *p, const msgpack_object *ev)
{
	char file[1024], test[1024], outcome[16], msg[8192], where[1024], dur[32];
	if (!ev_str(ev, "file", file, sizeof(file)) || !ev_str(ev, "test", test, sizeof(test)))
		return;
	if (!ev_str(ev, "outcome", outcome, sizeof(outcome)))
		strcpy(outcome, "error");
	const char *m = ev_str(ev, "message", msg, sizeof(msg));
	const char *w = ev_str(ev, "where", where, sizeof(where));
	bool bad = !strcmp(outcome, "fail") || !strcmp(outcome, "error");
	if (p->r.cfg.verbose < 0 && !bad)
		return;
	FILE *f = dest(p, file);
	if (!f)
		return;
	report_fmt_duration(dur, sizeof(dur), (uint64_t)ev_int(ev, "duration_ns", 0));
	if (!strcmp(outcome, "pass")) {
		fprintf(f, "  %sok%s   %s %s(%s)%s\n", C(p, GREEN), C(p, RESET), test, C(p, DIM),
			dur, C(p, RESET));
	} else if (!strcmp(outcome, "skip") || !strcmp(outcome, "todo")) {
		bool skip = !strcmp(outcome, "skip");
		fprintf(f, "  %s%s%s %s%s%s%s\n", C(p, skip ? YELLOW : BLUE), skip ? "skip" : "todo",
			C(p, RESET), test, m ? " — " : "", m ? m : "", "");
	} else {
		fprintf(f, "  %s%s%s %s %s(%s)%s\n", C(p, RED), !strcmp(outcome, "fail") ? "FAIL" : "ERR ",
			C(p, RESET), test, C(p, DIM), dur, C(p, RESET));
		put_indented(f, m ? m : outcome, 7);
		if (w)
			fprintf(f, "       %sat %s%s\n", C(p, DIM), w, C(p, RESET));
	}
	if (p->stream)
		fflush(f);
}

static void on_file_end(struct pretty *p, const msgpack_object *ev)
{
	char file[1024], err[8192], dur[32];
	if (!ev_str(ev, "file", file, sizeof(file)))
		return;
	const char *e = ev_str(ev, "error", err, sizeof(err));
	struct fbuf *b = fbuf_of(p, file, false);
	FILE *o = p->r.cfg.out;
	bool body = b && (fflush(b->f), b->len > 0);
	clear_status(p);
	uint64_t failed = (uint64_t)ev_int(ev, "failed", 0);
	if (p->stream) {
		if (e) {
			header(p, file);
			fprintf(o, "  %sFILE ERROR%s\n", C(p, RED), C(p, RESET));
			put_indented(o, e, 7);
		}
	} else if (body || e || p->r.cfg.verbose >= 0) {
		report_fmt_duration(dur, sizeof(dur), (uint64_t)ev_int(ev, "duration_ns", 0));
		const char *col = e || failed ? RED : GREEN;
		fprintf(o, "%s%s%s %s(%s)%s\n", C(p, BOLD), C(p, col), file, C(p, DIM), dur, C(p, RESET));
		if (body)
			fwrite(b->text, 1, b->len, o);
		if (e) {
			fprintf(o, "  %sFILE ERROR%s\n", C(p, RED), C(p, RESET));
			put_indented(o, e, 7);
		}
	}
	if (b) {
		struct fbuf **pp = &p->files;
		while (*pp != b)
			pp = &(*pp)->next;
		*pp = b->next;
		fclose(b->f);
		free(b->text);
		free(b->file);
		free(b);
	}
	fflush(o);
}

static void on_run_end(struct pretty *p, const msgpack_object *ev)
{
	char dur[32];
	FILE *o = p->r.cfg.out;
	clear_status(p);
	uint64_t passed = (uint64_t)ev_int(ev, "passed", 0), failed = (uint64_t)ev_int(ev, "failed", 0),
		 skipped = (uint64_t)ev_int(ev, "skipped", 0), todo = (uint64_t)ev_int(ev, "todo", 0),
		 errors = (uint64_t)ev_int(ev, "errors", 0);
	report_fmt_duration(dur, sizeof(dur), (uint64_t)ev_int(ev, "duration_ns", 0));
	const char *col = failed || errors ? RED : GREEN;
	fprintf(o, "\n%s%s%llu passed, %llu failed, %llu skipped, %llu todo, %llu errors%s in %s",
		C(p, BOLD), C(p, col), (unsigned long long)passed, (unsigned long long)failed,
		(unsigned long long)skipped, (unsigned long long)todo, (unsigned long long)errors,
		C(p, RESET), dur);
	if (p->r.cfg.tally)
		fprintf(o, " (%llu files)", (unsigned long long)p->r.cfg.tally->files_done);
	if (ev_bool(ev, "interrupted", false))
		fprintf(o, " %sinterrupted%s", C(p, YELLOW), C(p, RESET));
	fputc('\n', o);
	fflush(o);
}

static void pretty_event(struct reporter *r, const msgpack_object *ev)
{
	struct pretty *p = (struct pretty *)r;
	char kind[32], file[1024], text[8192], test[512];
	ev_kind(ev, kind, sizeof(kind));
	if (!strcmp(kind, "run_start")) {
		const msgpack_object *files = ev_get(ev, "files");
		p->stream = ev_int(ev, "jobs", 0) == 1 ||
			    (files && files->type == MSGPACK_OBJECT_ARRAY && files->via.array.size <= 1);
	} else if (!strcmp(kind, "file_start") && p->stream && r->cfg.verbose >= 0 &&
		   ev_str(ev, "file", file, sizeof(file))) {
		header(p, file);
		fflush(r->cfg.out);
	} else if (!strcmp(kind, "test_end")) {
		on_test_end(p, ev);
	} else if (!strcmp(kind, "file_end")) {
		on_file_end(p, ev);
	} else if (!strcmp(kind, "run_end")) {
		on_run_end(p, ev);
		return;
	} else if (!strcmp(kind, "test_log") && r->cfg.verbose > 0 &&
		   ev_str(ev, "file", file, sizeof(file)) && ev_str(ev, "text", text, sizeof(text))) {
		FILE *f = dest(p, file);
		if (f) {
			if (!ev_str(ev, "test", test, sizeof(test)))
				strcpy(test, "");
			fprintf(f, "  %slog%s  %s: ", C(p, DIM), C(p, RESET), test);
			put_indented(f, text, 0);
		}
	}
	draw_status(p);
}

static void pretty_tick(struct reporter *r)
{
	draw_status((struct pretty *)r);
}

static void pretty_hold(struct reporter *r, bool on)
{
	struct pretty *p = (struct pretty *)r;

	if (on)
		clear_status(p);
	fflush(r->cfg.out);
	p->held = on;
}

static int pretty_finish(struct reporter *r)
{
	clear_status((struct pretty *)r);
	fflush(r->cfg.out);
	return 0;
}

static void pretty_destroy(struct reporter *r)
{
	struct pretty *p = (struct pretty *)r;
	for (struct fbuf *b = p->files, *n; b; b = n) {
		n = b->next;
		fclose(b->f);
		free(b->text);
		free(b->file);
		free(b);
	}
	free(p->hdr);
	free(p);
}

struct reporter *report_pretty_new(const struct report_cfg *cfg)
{
	struct pretty *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->r = (struct reporter){.event = pretty_event, .tick = pretty_tick, .hold = pretty_hold,
				 .finish = pretty_finish,
				 .destroy = pretty_destroy, .cfg = *cfg};
	return &p->r;
}
