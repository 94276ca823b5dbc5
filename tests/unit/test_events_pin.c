/* test_events_pin.c — pins the byte encoding of every event kind of RUNNER.md.
 * Golden files: tests/golden/events/<kind>.v<PROTOCOL_VERSION>.msgpack. A test fails
 * when an encoding differs from the golden of the same PROTOCOL_VERSION (a silent
 * wire break); after a deliberate protocol change, bump PROTOCOL_VERSION and run
 * with PROVIUM_UPDATE_GOLDEN=1 to record the new version's goldens. The update mode
 * refuses to overwrite a golden of the current version with different bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agent/proto.h"
#include "runner/events.h"
#include "vmm/util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1700000000123456789ull
#define SEQ 7

static char golden_dir[PATH_MAX];

/* The checkout root: the test binary is <root>/<build>/tests/unit/test_events_pin. */
static void find_golden_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *d = exe;
		for (int i = 0; i < 4; i++)
			d = dirname(d);
		snprintf(golden_dir, sizeof(golden_dir), "%s/tests/golden/events", d);
		struct stat st;
		if (stat(golden_dir, &st) == 0)
			return;
	}
	snprintf(golden_dir, sizeof(golden_dir), "tests/golden/events");
}

/* ---- helpers to pack worker-shaped maps ---- */
static void s(msgpack_packer *pk, const char *v) { ev_pack_str(pk, v); }
static void kvs(msgpack_packer *pk, const char *k, const char *v) { s(pk, k); s(pk, v); }
static void kvu(msgpack_packer *pk, const char *k, uint64_t v) { s(pk, k); msgpack_pack_uint64(pk, v); }
static void kvb(msgpack_packer *pk, const char *k, bool v)
{
	s(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}
static void meta(msgpack_packer *pk)
{
	s(pk, "meta");
	msgpack_pack_map(pk, 4);
	kvb(pk, "slow", true);
	s(pk, "tags");
	msgpack_pack_array(pk, 2);
	s(pk, "net");
	s(pk, "smoke");
	kvu(pk, "timeout", 5);
	kvs(pk, "spec", "API-7");
}

/* Each sample lists its fields out of RUNNER.md order and adds an unknown field, so
 * the pins also hold the reordering and the pass-through. */
static void build(const char *kind, msgpack_packer *pk)
{
	static char *const argv[] = {"provium", "run", "-j2", "tests/lua"};
	static char *const files[] = {"tests/lua/a_test.lua", "tests/lua/b_test.lua"};
	if (!strcmp(kind, "run_start")) {
		struct ev_run_start e = {.t = T0, .argc = 4, .argv = argv, .jobs = 2,
					 .backend = "sandbox", .seed = 42, .nfiles = 2, .files = files};
		ev_pack_run_start(pk, &e);
	} else if (!strcmp(kind, "run_end")) {
		struct ev_run_end e = {.t = T0, .c = {5, 1, 2, 1, 1}, .duration_ns = 1234567,
				       .interrupted = true, .exit_code = 130};
		ev_pack_run_end(pk, &e);
	} else if (!strcmp(kind, "file_start")) {
		ev_pack_file_start(pk, T0, "tests/lua/a_test.lua");
	} else if (!strcmp(kind, "file_end")) {
		struct ev_file_end e = {.t = T0, .file = "tests/lua/a_test.lua", .c = {3, 1, 1, 0, 0},
					.duration_ns = 99, .error = "worker crashed: killed by signal 11"};
		ev_pack_file_end(pk, &e);
	} else if (!strcmp(kind, "test_start")) {
		msgpack_pack_map(pk, 5);
		meta(pk);
		kvs(pk, "test", "boots");
		kvs(pk, "ev", "test_start");
		kvu(pk, "t", T0);
		kvs(pk, "file", "tests/lua/a_test.lua");
	} else if (!strcmp(kind, "test_end")) {
		msgpack_pack_map(pk, 10);
		kvs(pk, "where", "tests/lua/a_test.lua:12");
		kvs(pk, "ev", "test_end");
		kvs(pk, "outcome", "fail");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvs(pk, "message", "expected 1, got 2");
		kvu(pk, "t", T0);
		kvs(pk, "test", "boots");
		kvu(pk, "duration_ns", 5000);
		meta(pk);
		kvs(pk, "x_unknown", "kept");
	} else if (!strcmp(kind, "test_log")) {
		msgpack_pack_map(pk, 5);
		kvs(pk, "text", "hello\nworld");
		kvs(pk, "test", "boots");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvu(pk, "t", T0);
		kvs(pk, "ev", "test_log");
	} else if (!strcmp(kind, "vm_spawn")) {
		msgpack_pack_map(pk, 10);
		kvs(pk, "ev", "vm_spawn");
		kvu(pk, "boot_ns", 31000000);
		kvs(pk, "vm", "web");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvs(pk, "profile", "default");
		kvs(pk, "backend", "kvm");
		kvu(pk, "pid", 4242);
		kvu(pk, "cid", 3);
		kvb(pk, "from_snapshot", true);
		kvu(pk, "t", T0);
	} else if (!strcmp(kind, "vm_exit")) {
		msgpack_pack_map(pk, 6);
		kvu(pk, "code", 0);
		kvs(pk, "reason", "teardown");
		kvs(pk, "vm", "web");
		kvs(pk, "ev", "vm_exit");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvu(pk, "t", T0);
	} else if (!strcmp(kind, "pool")) {
		msgpack_pack_map(pk, 6);
		kvu(pk, "building", 1);
		kvu(pk, "in_use", 2);
		kvu(pk, "ready", 3);
		kvs(pk, "profile", "default");
		kvs(pk, "ev", "pool");
		kvu(pk, "t", T0);
	} else if (!strcmp(kind, "claim")) {
		msgpack_pack_map(pk, 6);
		kvu(pk, "count", 1);
		kvs(pk, "action", "acquire");
		kvs(pk, "resource", "port-8080");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvs(pk, "ev", "claim");
		kvu(pk, "t", T0);
	} else if (!strcmp(kind, "barrier")) {
		msgpack_pack_map(pk, 6);
		kvu(pk, "parties", 2);
		kvu(pk, "arrived", 1);
		kvs(pk, "name", "both-up");
		kvs(pk, "file", "tests/lua/a_test.lua");
		kvs(pk, "ev", "barrier");
		kvu(pk, "t", T0);
	} else if (!strcmp(kind, "fixture")) {
		msgpack_pack_map(pk, 6);
		kvs(pk, "snapshot", "default-3f2a");
		kvu(pk, "duration_ns", 800000000);
		kvs(pk, "action", "build_end");
		kvs(pk, "profile", "default");
		kvs(pk, "ev", "fixture");
		kvu(pk, "t", T0);
	}
}

static const char *const all_kinds[] = {
	"run_start", "run_end", "file_start", "file_end", "test_start", "test_end", "test_log",
	"vm_spawn", "vm_exit", "pool", "claim", "barrier", "fixture",
};

/* Encodes the sample of `kind` as the public stream would: *out malloc'd. */
static void encode(const char *kind, char **out, size_t *len)
{
	msgpack_sbuffer in, enc;
	msgpack_packer pk;
	msgpack_sbuffer_init(&in);
	msgpack_sbuffer_init(&enc);
	msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
	build(kind, &pk);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, in.data, in.size, NULL), MSGPACK_UNPACK_SUCCESS);
	msgpack_packer_init(&pk, &enc, msgpack_sbuffer_write);
	assert_int_equal(ev_encode(&pk, SEQ, 1, &u.data), 0);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&in);
	*out = enc.data;
	*len = enc.size;
}

static void test_every_kind_matches_its_golden(void **state)
{
	(void)state;
	bool update = getenv("PROVIUM_UPDATE_GOLDEN") && *getenv("PROVIUM_UPDATE_GOLDEN") == '1';
	int failures = 0;
	for (size_t i = 0; i < PV_ARRAY_SIZE(all_kinds); i++) {
		char *bytes, *gold = NULL, path[PATH_MAX + 64];
		size_t len, glen = 0;
		encode(all_kinds[i], &bytes, &len);
		snprintf(path, sizeof(path), "%s/%s.v%d.msgpack", golden_dir, all_kinds[i],
			 PROTOCOL_VERSION);
		int r = pv_read_file(path, &gold, &glen);
		if (r < 0 && update) {
			FILE *f = fopen(path, "wb");
			assert_non_null(f);
			assert_int_equal(fwrite(bytes, 1, len, f), len);
			fclose(f);
			printf("# recorded %s\n", path);
		} else if (r < 0) {
			printf("# %s: no golden for PROTOCOL_VERSION %d (run with PROVIUM_UPDATE_GOLDEN=1 "
			       "after bumping the version)\n", path, PROTOCOL_VERSION);
			failures++;
		} else if (glen != len || memcmp(gold, bytes, len)) {
			printf("# %s: the encoding of %s changed but PROTOCOL_VERSION is still %d: "
			       "bump PROTOCOL_VERSION (agent/proto.h) for a wire change%s\n", path,
			       all_kinds[i], PROTOCOL_VERSION,
			       update ? " (PROVIUM_UPDATE_GOLDEN refuses to rewrite a golden of the same "
					"version)" : "");
			failures++;
		}
		free(gold);
		free(bytes);
	}
	assert_int_equal(failures, 0);
}

/* Every RUNNER.md field of each kind is in its sample, in order, right after the
 * header, so the pins cover every field. */
static void test_samples_cover_every_field_in_spec_order(void **state)
{
	(void)state;
	for (size_t i = 0; i < PV_ARRAY_SIZE(all_kinds); i++) {
		char *bytes;
		size_t len;
		encode(all_kinds[i], &bytes, &len);
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, bytes, len, NULL), MSGPACK_UNPACK_SUCCESS);
		const msgpack_object_map *m = &u.data.via.map;
		assert_true(ev_is_str(&m->ptr[0].key, "v"));
		assert_int_equal(m->ptr[0].val.via.u64, PROTOCOL_VERSION);
		assert_true(ev_is_str(&m->ptr[1].key, "seq"));
		assert_int_equal(m->ptr[1].val.via.u64, SEQ);
		assert_true(ev_is_str(&m->ptr[2].key, "t"));
		assert_int_equal(m->ptr[2].val.via.u64, T0);
		assert_true(ev_is_str(&m->ptr[3].key, "ev"));
		assert_true(ev_is_str(&m->ptr[3].val, all_kinds[i]));
		const char *const *f = ev_kind_fields(all_kinds[i]);
		assert_non_null(f);
		uint32_t at = 4;
		for (; *f; f++, at++) {
			if (at >= m->size || !ev_is_str(&m->ptr[at].key, *f))
				fail_msg("%s: field %s missing or out of order", all_kinds[i], *f);
		}
		if (!strcmp(all_kinds[i], "test_end")) {
			/* the unknown field passes through, after the known ones */
			assert_int_equal(m->size, at + 1);
			assert_true(ev_is_str(&m->ptr[at].key, "x_unknown"));
		} else {
			assert_int_equal(m->size, at);
		}
		msgpack_unpacked_destroy(&u);
		free(bytes);
	}
}

/* Events the runner packs itself outside the samples above (the test_end a crashed
 * worker's running test gets) have the keys and msgpack types of their kind's
 * golden: renaming or retyping a field there fails here, not only in the samples. */
static void test_crash_test_end_matches_golden_shape(void **state)
{
	(void)state;
	char path[PATH_MAX + 64], *gold, *bytes;
	size_t glen;
	snprintf(path, sizeof(path), "%s/test_end.v%d.msgpack", golden_dir, PROTOCOL_VERSION);
	assert_int_equal(pv_read_file(path, &gold, &glen), 0);

	msgpack_sbuffer in, out;
	msgpack_packer pk;
	msgpack_sbuffer_init(&in);
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
	ev_pack_test_error(&pk, T0, "tests/lua/a_test.lua", "boots", 5000,
			   "worker crashed: killed by signal 9");
	msgpack_unpacked u, g, e;
	msgpack_unpacked_init(&u);
	msgpack_unpacked_init(&g);
	msgpack_unpacked_init(&e);
	assert_int_equal(msgpack_unpack_next(&u, in.data, in.size, NULL), MSGPACK_UNPACK_SUCCESS);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	assert_int_equal(ev_encode(&pk, SEQ, 1, &u.data), 0);
	bytes = out.data;
	assert_int_equal(msgpack_unpack_next(&e, bytes, out.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(msgpack_unpack_next(&g, gold, glen, NULL), MSGPACK_UNPACK_SUCCESS);
	const msgpack_object_map *m = &e.data.via.map;
	for (uint32_t i = 0; i < m->size; i++) {
		char key[64];
		const msgpack_object *k = &m->ptr[i].key;
		snprintf(key, sizeof(key), "%.*s", (int)k->via.str.size, k->via.str.ptr);
		const msgpack_object *gv = ev_get(&g.data, key);
		if (!gv)
			fail_msg("crash test_end field %s is not in the pinned test_end", key);
		if (gv->type != m->ptr[i].val.type)
			fail_msg("crash test_end field %s has msgpack type %d, pinned %d", key,
				 m->ptr[i].val.type, gv->type);
	}
	char buf[16];
	assert_string_equal(ev_str(&e.data, "outcome", buf, sizeof(buf)), "error");
	assert_non_null(ev_get(&e.data, "duration_ns"));
	assert_non_null(ev_get(&e.data, "meta"));
	msgpack_unpacked_destroy(&u);
	msgpack_unpacked_destroy(&g);
	msgpack_unpacked_destroy(&e);
	msgpack_sbuffer_destroy(&in);
	msgpack_sbuffer_destroy(&out);
	free(gold);
}

/* A worker cannot forge v or seq, and a repeated key is written once. */
static void test_encode_overrides_v_seq_and_drops_duplicates(void **state)
{
	(void)state;
	msgpack_sbuffer in, out;
	msgpack_packer pk;
	msgpack_sbuffer_init(&in);
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	kvu(&pk, "v", 99);
	kvu(&pk, "seq", 1234);
	kvs(&pk, "ev", "test_log");
	kvs(&pk, "text", "first");
	kvs(&pk, "text", "second");
	msgpack_unpacked u, d;
	msgpack_unpacked_init(&u);
	msgpack_unpacked_init(&d);
	assert_int_equal(msgpack_unpack_next(&u, in.data, in.size, NULL), MSGPACK_UNPACK_SUCCESS);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	assert_int_equal(ev_encode(&pk, 3, 555, &u.data), 0);
	assert_int_equal(msgpack_unpack_next(&d, out.data, out.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(ev_int(&d.data, "v", -1), PROTOCOL_VERSION);
	assert_int_equal(ev_int(&d.data, "seq", -1), 3);
	assert_int_equal(ev_int(&d.data, "t", -1), 555); /* no t in the input: the default */
	assert_int_equal(d.data.via.map.size, 5);
	char buf[16];
	assert_string_equal(ev_str(&d.data, "text", buf, sizeof(buf)), "first");
	/* not a map / no kind: refused */
	msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
	assert_int_equal(ev_encode(&pk, 1, 1, &nil), -EINVAL);
	msgpack_unpacked_destroy(&u);
	msgpack_unpacked_destroy(&d);
	msgpack_sbuffer_destroy(&in);
	msgpack_sbuffer_destroy(&out);
}

/* The sink numbers events from 1, writes them back to back, and keeps test_listed
 * (internal) out of the stream. */
static void test_sink_numbers_and_filters(void **state)
{
	(void)state;
	char path[] = "/tmp/provium-evtest-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct ev_sink sk;
	assert_int_equal(ev_sink_open(&sk, path), 0);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ev_pack_file_start(&pk, T0, "a");
	assert_int_equal(ev_sink_emit_packed(&sk, sb.data, sb.size), 0);
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 2);
	kvs(&pk, "ev", "test_listed");
	kvs(&pk, "test", "x");
	assert_int_equal(ev_sink_emit_packed(&sk, sb.data, sb.size), 0);
	msgpack_sbuffer_clear(&sb);
	ev_pack_file_start(&pk, T0, "b");
	assert_int_equal(ev_sink_emit_packed(&sk, sb.data, sb.size), 0);
	ev_sink_close(&sk);
	msgpack_sbuffer_destroy(&sb);

	char *data;
	size_t len, off = 0;
	assert_int_equal(pv_read_file(path, &data, &len), 0);
	unlink(path);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int n = 0;
	char f[8];
	while (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS) {
		n++;
		assert_int_equal(ev_int(&u.data, "seq", -1), n);
		assert_string_equal(ev_str(&u.data, "file", f, sizeof(f)), n == 1 ? "a" : "b");
	}
	assert_int_equal(n, 2);
	assert_int_equal(off, len);
	msgpack_unpacked_destroy(&u);
	free(data);
}

int main(void)
{
	find_golden_dir();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_matches_its_golden),
		cmocka_unit_test(test_samples_cover_every_field_in_spec_order),
		cmocka_unit_test(test_crash_test_end_matches_golden_shape),
		cmocka_unit_test(test_encode_overrides_v_seq_and_drops_duplicates),
		cmocka_unit_test(test_sink_numbers_and_filters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
