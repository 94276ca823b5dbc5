/* events.h — the public event stream of RUNNER.md: encoding (one deterministic
 * function per event, fixed field order), building the parent's own events, the
 * sink that numbers events and writes them as they happen, and small readers for
 * msgpack maps used by the reporters. */
#ifndef PROVIUM_EVENTS_H
#define PROVIUM_EVENTS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- reading msgpack maps ---- */
const msgpack_object *ev_get(const msgpack_object *map, const char *key);
bool ev_is_str(const msgpack_object *o, const char *s);
/* The string field `key` NUL-terminated in buf (truncated), or NULL when absent or
 * not a string. */
const char *ev_str(const msgpack_object *map, const char *key, char *buf, size_t cap);
/* malloc'd copy of a string field, NULL when absent. */
char *ev_strdup(const msgpack_object *map, const char *key);
int64_t ev_int(const msgpack_object *map, const char *key, int64_t def);
bool ev_bool(const msgpack_object *map, const char *key, bool def);
/* The event kind (the "ev" field) into buf; "" when absent. */
const char *ev_kind(const msgpack_object *map, char *buf, size_t cap);

/* ---- encoding ---- */
/* The RUNNER.md fields of kind `kind` in their fixed order (NULL-terminated), or
 * NULL for a kind RUNNER.md does not list. */
const char *const *ev_kind_fields(const char *kind);
/* Packs the public form of one event: {v, seq, t, ev, <the kind's RUNNER.md fields
 * present in `ev`, in RUNNER.md order>, <any other fields in their input order>}.
 * `ev` is a map as a worker sends it (v and seq in it are ignored; t is taken from
 * it, else t_default). Deterministic: same input, same bytes. */
int ev_encode(msgpack_packer *pk, uint64_t seq, uint64_t t_default, const msgpack_object *ev);

/* ---- the parent's own events, packed worker-shaped (no v/seq) ---- */
struct ev_run_start {
	uint64_t t;
	int argc;
	char *const *argv;
	int jobs;
	const char *backend;
	uint64_t seed;
	size_t nfiles;
	char *const *files;
};
struct ev_counts {
	uint64_t passed, failed, skipped, todo, errors;
};
struct ev_run_end {
	uint64_t t;
	struct ev_counts c;
	uint64_t duration_ns;
	bool interrupted;
	int exit_code;
};
struct ev_file_end {
	uint64_t t;
	const char *file;
	struct ev_counts c; /* errors unused: file_end has no errors field */
	uint64_t duration_ns;
	const char *error; /* NULL: no error field */
};
void ev_pack_run_start(msgpack_packer *pk, const struct ev_run_start *e);
void ev_pack_run_end(msgpack_packer *pk, const struct ev_run_end *e);
void ev_pack_file_start(msgpack_packer *pk, uint64_t t, const char *file);
void ev_pack_file_end(msgpack_packer *pk, const struct ev_file_end *e);
/* test_end {outcome="error"} for a test a crashed worker never finished. */
void ev_pack_test_error(msgpack_packer *pk, uint64_t t, const char *file, const char *test,
			uint64_t duration_ns, const char *message);
/* vm_exit {reason} for a VM whose worker ended without tearing it down (crash, SIGINT). */
void ev_pack_vm_exit(msgpack_packer *pk, uint64_t t, const char *file, const char *vm,
		     const char *reason);
void ev_pack_str(msgpack_packer *pk, const char *s);

/* ---- the sink ---- */
struct ev_sink {
	int fd;            /* events file, -1 for none */
	bool own_fd;
	uint64_t seq;      /* last seq written */
	msgpack_sbuffer sb;
	/* Sees every public event (with v and seq), e.g. the reporters. */
	void (*observe)(void *ctx, const msgpack_object *pub);
	void *ctx;
	int err;           /* first write error (-errno), reported once */
};
/* path: a file name, "-" for stdout, or NULL for no stream. */
int ev_sink_open(struct ev_sink *s, const char *path);
/* Numbers, encodes, writes and shows one worker-shaped event. test_listed events are
 * internal and never written. */
int ev_sink_emit(struct ev_sink *s, const msgpack_object *ev);
/* The same from packed bytes (one map). */
int ev_sink_emit_packed(struct ev_sink *s, const char *buf, size_t len);
void ev_sink_close(struct ev_sink *s);

#endif
