/* report.h — reporters turn the public event stream into human or machine output:
 * pretty (per-file and per-test lines, live status line on a terminal), TAP v13,
 * JUnit XML, JSON lines. Each sees every public event (with v and seq) in order. */
#ifndef PROVIUM_REPORT_H
#define PROVIUM_REPORT_H

#include "runner/events.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>

/* Running totals of a run, kept from the events alone. */
struct tally {
	struct ev_counts c;     /* errors = tests errored + files with a file error */
	uint64_t file_errors;
	uint64_t files_done, files_total;
	uint64_t tests_ended;   /* every test_end, whatever its outcome */
	int vms_running;
	uint64_t t0;            /* pv_now_ns() at the start */
};
void tally_event(struct tally *t, const msgpack_object *pub);

struct report_cfg {
	FILE *out;
	bool color;
	bool tty;      /* out is a terminal: live status line */
	int verbose;   /* -1 quiet, 0 normal, 1+ verbose */
	const struct tally *tally;
};

struct reporter {
	void (*event)(struct reporter *r, const msgpack_object *pub);
	void (*tick)(struct reporter *r);   /* may be NULL */
	/* on: a person is at a worker's prompt or shell on this terminal, so draw
	 * nothing over it (no status line) until off. May be NULL. */
	void (*hold)(struct reporter *r, bool on);
	int (*finish)(struct reporter *r);  /* after run_end; returns 0 or -errno */
	void (*destroy)(struct reporter *r);
	struct report_cfg cfg;
};

struct reporter *report_pretty_new(const struct report_cfg *cfg);
struct reporter *report_tap_new(const struct report_cfg *cfg);
/* path NULL: write to cfg->out. */
struct reporter *report_junit_new(const struct report_cfg *cfg, const char *path);
struct reporter *report_json_new(const struct report_cfg *cfg);

/* msgpack -> jansson (maps keep their order; non-string keys are printed; binary and
 * invalid UTF-8 strings are made valid). Used by the json reporter and `provium events`. */
json_t *report_mp_to_json(const msgpack_object *o);

/* "1.234 s", "12 ms", "850 us" */
void report_fmt_duration(char *buf, size_t cap, uint64_t ns);

#endif
