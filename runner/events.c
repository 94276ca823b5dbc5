/* events.c — the msgpack event stream of RUNNER.md. Every event is encoded by one
 * function, ev_encode(), with a fixed field order per kind, so the bytes are pinned
 * by tests/unit/test_events_pin.c against tests/golden/events/. */
#include "runner/events.h"
#include "agent/proto.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ---- reading ---- */

bool ev_is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       !memcmp(o->via.str.ptr, s, n);
}

const msgpack_object *ev_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (ev_is_str(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

const char *ev_str(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
	const msgpack_object *o = ev_get(map, key);
	if (!o || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) || !cap)
		return NULL;
	size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
	memcpy(buf, o->via.str.ptr, n);
	buf[n] = 0;
	return buf;
}

char *ev_strdup(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = ev_get(map, key);
	if (!o || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN))
		return NULL;
	return strndup(o->via.str.ptr, o->via.str.size);
}

int64_t ev_int(const msgpack_object *map, const char *key, int64_t def)
{
	const msgpack_object *o = ev_get(map, key);
	if (!o)
		return def;
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return (int64_t)o->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return o->via.i64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return (int64_t)o->via.f64;
	default: return def;
	}
}

bool ev_bool(const msgpack_object *map, const char *key, bool def)
{
	const msgpack_object *o = ev_get(map, key);
	return o && o->type == MSGPACK_OBJECT_BOOLEAN ? o->via.boolean : def;
}

const char *ev_kind(const msgpack_object *map, char *buf, size_t cap)
{
	if (!ev_str(map, "ev", buf, cap))
		buf[0] = 0;
	return buf;
}

/* ---- encoding ---- */

static const struct {
	const char *kind;
	const char *fields[10];
} kinds[] = {
	{"run_start", {"argv", "jobs", "backend", "seed", "files"}},
	{"run_end", {"passed", "failed", "skipped", "todo", "errors", "duration_ns",
		     "interrupted", "exit_code"}},
	{"file_start", {"file"}},
	{"file_end", {"file", "passed", "failed", "skipped", "todo", "duration_ns", "error"}},
	{"test_start", {"file", "test", "meta"}},
	{"test_end", {"file", "test", "outcome", "duration_ns", "message", "where", "meta"}},
	{"test_log", {"file", "test", "text"}},
	{"vm_spawn", {"file", "vm", "backend", "profile", "cid", "pid", "from_snapshot",
		      "boot_ns"}},
	{"vm_exit", {"file", "vm", "reason", "code"}},
	{"pool", {"profile", "ready", "in_use", "building"}},
	{"claim", {"file", "resource", "action", "count"}},
	{"barrier", {"file", "name", "arrived", "parties"}},
	{"fixture", {"profile", "action", "duration_ns", "snapshot"}},
};

const char *const *ev_kind_fields(const char *kind)
{
	for (size_t i = 0; i < PV_ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].kind, kind))
			return kinds[i].fields;
	return NULL;
}

void ev_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static bool is_header(const msgpack_object *k)
{
	return ev_is_str(k, "v") || ev_is_str(k, "seq") || ev_is_str(k, "t") || ev_is_str(k, "ev");
}

int ev_encode(msgpack_packer *pk, uint64_t seq, uint64_t t_default, const msgpack_object *ev)
{
	if (!ev || ev->type != MSGPACK_OBJECT_MAP)
		return pv_error(EINVAL, "event is not a map");
	const msgpack_object *kind = ev_get(ev, "ev");
	if (!kind || kind->type != MSGPACK_OBJECT_STR)
		return pv_error(EINVAL, "event has no ev kind");
	char kbuf[64];
	const char *const *fields = ev_kind_fields(ev_kind(ev, kbuf, sizeof(kbuf)));
	uint32_t n = ev->via.map.size;
	const msgpack_object_kv *kv = ev->via.map.ptr;

	/* Order: known fields first (spec order), then the rest (input order). A key
	 * repeated in the input is written once (its first occurrence). */
	uint32_t order[256], count = 0;
	bool used[256] = {false};
	if (n > 256)
		return pv_error(E2BIG, "event has %u fields", n);
	for (size_t f = 0; fields && fields[f]; f++)
		for (uint32_t i = 0; i < n; i++)
			if (!used[i] && ev_is_str(&kv[i].key, fields[f])) {
				used[i] = true;
				order[count++] = i;
				break;
			}
	for (uint32_t i = 0; i < n; i++) {
		if (used[i] || is_header(&kv[i].key))
			continue;
		bool dup = false;
		for (uint32_t j = 0; j < count && !dup; j++) {
			const msgpack_object *a = &kv[order[j]].key, *b = &kv[i].key;
			dup = msgpack_object_equal(*a, *b);
		}
		if (dup)
			continue;
		used[i] = true;
		order[count++] = i;
	}
	int64_t t = ev_int(ev, "t", -1);
	msgpack_pack_map(pk, 4 + count);
	ev_pack_str(pk, "v");
	msgpack_pack_uint64(pk, PROTOCOL_VERSION);
	ev_pack_str(pk, "seq");
	msgpack_pack_uint64(pk, seq);
	ev_pack_str(pk, "t");
	msgpack_pack_uint64(pk, t >= 0 ? (uint64_t)t : t_default);
	ev_pack_str(pk, "ev");
	msgpack_pack_object(pk, *kind);
	for (uint32_t j = 0; j < count; j++) {
		msgpack_pack_object(pk, kv[order[j]].key);
		msgpack_pack_object(pk, kv[order[j]].val);
	}
	return 0;
}

/* ---- the parent's events ---- */

static void kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	ev_pack_str(pk, k);
	ev_pack_str(pk, v);
}

static void kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	ev_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

void ev_pack_run_start(msgpack_packer *pk, const struct ev_run_start *e)
{
	msgpack_pack_map(pk, 7);
	kv_str(pk, "ev", "run_start");
	kv_u64(pk, "t", e->t);
	ev_pack_str(pk, "argv");
	msgpack_pack_array(pk, (size_t)e->argc);
	for (int i = 0; i < e->argc; i++)
		ev_pack_str(pk, e->argv[i]);
	kv_u64(pk, "jobs", (uint64_t)e->jobs);
	kv_str(pk, "backend", e->backend);
	kv_u64(pk, "seed", e->seed);
	ev_pack_str(pk, "files");
	msgpack_pack_array(pk, e->nfiles);
	for (size_t i = 0; i < e->nfiles; i++)
		ev_pack_str(pk, e->files[i]);
}

void ev_pack_run_end(msgpack_packer *pk, const struct ev_run_end *e)
{
	msgpack_pack_map(pk, 10);
	kv_str(pk, "ev", "run_end");
	kv_u64(pk, "t", e->t);
	kv_u64(pk, "passed", e->c.passed);
	kv_u64(pk, "failed", e->c.failed);
	kv_u64(pk, "skipped", e->c.skipped);
	kv_u64(pk, "todo", e->c.todo);
	kv_u64(pk, "errors", e->c.errors);
	kv_u64(pk, "duration_ns", e->duration_ns);
	ev_pack_str(pk, "interrupted");
	if (e->interrupted)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	kv_u64(pk, "exit_code", (uint64_t)e->exit_code);
}

void ev_pack_file_start(msgpack_packer *pk, uint64_t t, const char *file)
{
	msgpack_pack_map(pk, 3);
	kv_str(pk, "ev", "file_start");
	kv_u64(pk, "t", t);
	kv_str(pk, "file", file);
}

void ev_pack_file_end(msgpack_packer *pk, const struct ev_file_end *e)
{
	msgpack_pack_map(pk, e->error ? 9 : 8);
	kv_str(pk, "ev", "file_end");
	kv_u64(pk, "t", e->t);
	kv_str(pk, "file", e->file);
	kv_u64(pk, "passed", e->c.passed);
	kv_u64(pk, "failed", e->c.failed);
	kv_u64(pk, "skipped", e->c.skipped);
	kv_u64(pk, "todo", e->c.todo);
	kv_u64(pk, "duration_ns", e->duration_ns);
	if (e->error)
		kv_str(pk, "error", e->error);
}

void ev_pack_test_error(msgpack_packer *pk, uint64_t t, const char *file, const char *test,
			uint64_t duration_ns, const char *message)
{
	msgpack_pack_map(pk, 8);
	kv_str(pk, "ev", "test_end");
	kv_u64(pk, "t", t);
	kv_str(pk, "file", file);
	kv_str(pk, "test", test);
	kv_str(pk, "outcome", "error");
	kv_u64(pk, "duration_ns", duration_ns);
	kv_str(pk, "message", message);
	ev_pack_str(pk, "meta");
	msgpack_pack_map(pk, 0);
}

void ev_pack_vm_exit(msgpack_packer *pk, uint64_t t, const char *file, const char *vm,
		     const char *reason)
{
	msgpack_pack_map(pk, 5);
	kv_str(pk, "ev", "vm_exit");
	kv_u64(pk, "t", t);
	kv_str(pk, "file", file);
	kv_str(pk, "vm", vm);
	kv_str(pk, "reason", reason);
}

/* ---- the sink ---- */

int ev_sink_open(struct ev_sink *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	msgpack_sbuffer_init(&s->sb);
	if (!path)
		return 0;
	if (!strcmp(path, "-")) {
		s->fd = 1;
		return 0;
	}
	s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		int e = errno;
		return pv_error(e, "events file %s: %s", path, strerror(e));
	}
	s->own_fd = true;
	return 0;
}

int ev_sink_emit(struct ev_sink *s, const msgpack_object *ev)
{
	char kind[64];
	ev_kind(ev, kind, sizeof(kind));
	if (!strcmp(kind, "test_listed"))
		return 0;
	msgpack_packer pk;
	msgpack_sbuffer_clear(&s->sb);
	msgpack_packer_init(&pk, &s->sb, msgpack_sbuffer_write);
	int r = ev_encode(&pk, s->seq + 1, pv_wall_ns(), ev);
	if (r < 0)
		return r;
	s->seq++;
	if (s->fd >= 0 && !s->err) {
		r = pv_write_full(s->fd, s->sb.data, s->sb.size);
		if (r < 0) {
			s->err = r;
			pv_log("events stream: %s (no more events written)", strerror(-r));
		}
	}
	if (s->observe) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, s->sb.data, s->sb.size, NULL) == MSGPACK_UNPACK_SUCCESS)
			s->observe(s->ctx, &u.data);
		msgpack_unpacked_destroy(&u);
	}
	return 0;
}

int ev_sink_emit_packed(struct ev_sink *s, const char *buf, size_t len)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int r;
	if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS)
		r = pv_error(EINVAL, "event is not msgpack");
	else
		r = ev_sink_emit(s, &u.data);
	msgpack_unpacked_destroy(&u);
	return r;
}

void ev_sink_close(struct ev_sink *s)
{
	if (s->own_fd && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	msgpack_sbuffer_destroy(&s->sb);
}
