/* report_junit.c — JUnit XML (the shape Jenkins/GitLab read): one <testsuite> per
 * file, one <testcase> per test, <failure>/<error>/<skipped>, test logs in
 * <system-out>, a file error as an <error> testcase. Written once at the end; text is
 * escaped and made valid XML 1.0 (no control characters, valid UTF-8). */
#include "runner/report.h"
#include "vmm/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tcase {
	struct tcase *next;
	char *name, *outcome, *message, *where;
	uint64_t duration_ns;
	char *log;
	size_t loglen;
	FILE *logf;
};

struct tsuite {
	struct tsuite *next;
	char *file, *error;
	uint64_t duration_ns, t_start;
	struct tcase *cases, **tail;
	bool ended;
};

struct junit {
	struct reporter r;
	char *path;
	struct tsuite *suites, **tail;
	uint64_t t0;
};

static struct tsuite *suite_of(struct junit *j, const char *file)
{
	for (struct tsuite *s = j->suites; s; s = s->next)
		if (!strcmp(s->file, file))
			return s;
	struct tsuite *s = calloc(1, sizeof(*s));
	if (!s || !(s->file = strdup(file))) {
		free(s);
		return NULL;
	}
	s->tail = &s->cases;
	*j->tail = s;
	j->tail = &s->next;
	return s;
}

static struct tcase *case_of(struct tsuite *s, const char *test)
{
	/* the open (not yet ended) case of that name, else a new one */
	for (struct tcase *c = s->cases; c; c = c->next)
		if (!c->outcome && !strcmp(c->name, test))
			return c;
	struct tcase *c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(test))) {
		free(c);
		return NULL;
	}
	*s->tail = c;
	s->tail = &c->next;
	return c;
}

static void junit_event(struct reporter *r, const msgpack_object *ev)
{
	struct junit *j = (struct junit *)r;
	char kind[32], file[1024], test[1024];
	ev_kind(ev, kind, sizeof(kind));
	if (!ev_str(ev, "file", file, sizeof(file)))
		return;
	struct tsuite *s = suite_of(j, file);
	if (!s)
		return;
	if (!strcmp(kind, "file_start")) {
		s->t_start = (uint64_t)ev_int(ev, "t", 0);
	} else if (!strcmp(kind, "file_end")) {
		s->ended = true;
		s->duration_ns = (uint64_t)ev_int(ev, "duration_ns", 0);
		free(s->error);
		s->error = ev_strdup(ev, "error");
	} else if (!strcmp(kind, "test_start") || !strcmp(kind, "test_end") ||
		   !strcmp(kind, "test_log")) {
		if (!ev_str(ev, "test", test, sizeof(test)))
			return;
		struct tcase *c = case_of(s, test);
		if (!c)
			return;
		if (!strcmp(kind, "test_log")) {
			char *text = ev_strdup(ev, "text");
			if (text && (c->logf || (c->logf = open_memstream(&c->log, &c->loglen))))
				fprintf(c->logf, "%s\n", text);
			free(text);
		} else if (!strcmp(kind, "test_end")) {
			c->outcome = ev_strdup(ev, "outcome");
			if (!c->outcome)
				c->outcome = strdup("error");
			c->message = ev_strdup(ev, "message");
			c->where = ev_strdup(ev, "where");
			c->duration_ns = (uint64_t)ev_int(ev, "duration_ns", 0);
		}
	}
}

/* Writes s as XML character data / attribute value. */
static void xml_put(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		unsigned char b = *p;
		if (b < 0x80) {
			switch (b) {
			case '&': fputs("&amp;", f); break;
			case '<': fputs("&lt;", f); break;
			case '>': fputs("&gt;", f); break;
			case '"': fputs("&quot;", f); break;
			case '\'': fputs("&apos;", f); break;
			case '\n': fputs("&#10;", f); break;
			case '\t': fputs("&#9;", f); break;
			case '\r': fputs("&#13;", f); break;
			default: fputc(b < 0x20 || b == 0x7f ? '?' : b, f);
			}
			p++;
			continue;
		}
		size_t len = (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
		bool ok = len > 0;
		for (size_t k = 1; ok && k < len; k++)
			ok = (p[k] >> 6) == 2; /* also stops at the NUL */
		if (!ok) {
			fputc('?', f);
			p++;
			continue;
		}
		fwrite(p, 1, len, f);
		p += len;
	}
}

static void count_suite(const struct tsuite *s, unsigned *tests, unsigned *fail, unsigned *err,
			unsigned *skip)
{
	for (const struct tcase *c = s->cases; c; c = c->next) {
		if (!c->outcome)
			continue;
		(*tests)++;
		if (!strcmp(c->outcome, "fail"))
			(*fail)++;
		else if (!strcmp(c->outcome, "skip") || !strcmp(c->outcome, "todo"))
			(*skip)++;
		else if (strcmp(c->outcome, "pass"))
			(*err)++;
	}
	if (s->error) {
		(*tests)++;
		(*err)++;
	}
}

static void write_xml(struct junit *j, FILE *f)
{
	unsigned T = 0, F = 0, E = 0, S = 0;
	for (struct tsuite *s = j->suites; s; s = s->next)
		count_suite(s, &T, &F, &E, &S);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f, "<testsuites name=\"provium\" tests=\"%u\" failures=\"%u\" errors=\"%u\" "
		   "skipped=\"%u\" time=\"%.3f\">\n", T, F, E, S, (double)(pv_now_ns() - j->t0) / 1e9);
	for (struct tsuite *s = j->suites; s; s = s->next) {
		unsigned t = 0, fl = 0, e = 0, sk = 0;
		count_suite(s, &t, &fl, &e, &sk);
		char ts[32] = "";
		time_t secs = (time_t)(s->t_start / 1000000000ull);
		struct tm tm;
		if (s->t_start && gmtime_r(&secs, &tm))
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fputs("  <testsuite name=\"", f);
		xml_put(f, s->file);
		fprintf(f, "\" tests=\"%u\" failures=\"%u\" errors=\"%u\" skipped=\"%u\" time=\"%.3f\"%s%s%s>\n",
			t, fl, e, sk, (double)s->duration_ns / 1e9, ts[0] ? " timestamp=\"" : "", ts,
			ts[0] ? "\"" : "");
		for (struct tcase *c = s->cases; c; c = c->next) {
			if (!c->outcome)
				continue; /* started, never ended: the file error says why */
			fputs("    <testcase classname=\"", f);
			xml_put(f, s->file);
			fputs("\" name=\"", f);
			xml_put(f, c->name);
			fprintf(f, "\" time=\"%.3f\"", (double)c->duration_ns / 1e9);
			if (c->logf)
				fflush(c->logf);
			bool pass = !strcmp(c->outcome, "pass");
			if (pass && !c->loglen) {
				fputs("/>\n", f);
				continue;
			}
			fputs(">\n", f);
			if (!pass) {
				const char *tag = !strcmp(c->outcome, "fail") ? "failure"
						  : !strcmp(c->outcome, "skip") || !strcmp(c->outcome, "todo")
						  ? "skipped" : "error";
				fprintf(f, "      <%s message=\"", tag);
				if (!strcmp(c->outcome, "todo"))
					fputs("todo: ", f);
				xml_put(f, c->message ? c->message : c->outcome);
				fprintf(f, "\" type=\"%s\">", c->outcome);
				if (c->where) {
					xml_put(f, c->where);
					xml_put(f, ": ");
				}
				xml_put(f, c->message);
				fprintf(f, "</%s>\n", tag);
			}
			if (c->loglen) {
				fputs("      <system-out>", f);
				xml_put(f, c->log);
				fputs("</system-out>\n", f);
			}
			fputs("    </testcase>\n", f);
		}
		if (s->error) {
			fputs("    <testcase classname=\"", f);
			xml_put(f, s->file);
			fputs("\" name=\"(file)\" time=\"0\">\n      <error message=\"", f);
			xml_put(f, s->error);
			fputs("\" type=\"file_error\">", f);
			xml_put(f, s->error);
			fputs("</error>\n    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
	}
	fputs("</testsuites>\n", f);
}

static int junit_finish(struct reporter *r)
{
	struct junit *j = (struct junit *)r;
	if (!j->path) {
		write_xml(j, r->cfg.out);
		fflush(r->cfg.out);
		return 0;
	}
	FILE *f = fopen(j->path, "w");
	if (!f)
		return pv_error(errno, "junit %s: %s", j->path, strerror(errno));
	write_xml(j, f);
	if (fclose(f) != 0)
		return pv_error(errno, "junit %s: %s", j->path, strerror(errno));
	return 0;
}

static void junit_destroy(struct reporter *r)
{
	struct junit *j = (struct junit *)r;
	for (struct tsuite *s = j->suites, *sn; s; s = sn) {
		sn = s->next;
		for (struct tcase *c = s->cases, *cn; c; c = cn) {
			cn = c->next;
			if (c->logf)
				fclose(c->logf);
			free(c->log);
			free(c->name);
			free(c->outcome);
			free(c->message);
			free(c->where);
			free(c);
		}
		free(s->file);
		free(s->error);
		free(s);
	}
	free(j->path);
	free(j);
}

struct reporter *report_junit_new(const struct report_cfg *cfg, const char *path)
{
	struct junit *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->r = (struct reporter){.event = junit_event, .finish = junit_finish,
				 .destroy = junit_destroy, .cfg = *cfg};
	j->tail = &j->suites;
	j->t0 = pv_now_ns();
	if (path && !(j->path = strdup(path))) {
		free(j);
		return NULL;
	}
	return &j->r;
}
