/* test_proto.c — the shared host–agent codec (agent/proto.c): round trips of every
 * frame shape, the incremental reader fed in pieces, oversized and malformed frames,
 * the hello check, accessors, and the frame-decoder fuzz target run on the
 * regression corpus (tests/fuzz/frame_corpus) plus random and mutated inputs (under
 * ASan+UBSan in `make check-asan`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/proto.h"
#include "tests/fuzz/fuzz_frame.h"
#include "tests/unit/fuzz_replay.h"

static void frame_of(struct pv_fbuf *b, struct pv_frame *f)
{
	char err[160];

	assert_int_equal(pv_fbuf_finish(b), 0);
	assert_int_equal(pv_frame_decode(b->sb.data + 4, b->sb.size - 4, f, err, sizeof(err)), 0);
}

/* The worked example in docs/protocol.md ("ping", id 7), byte for byte. */
static void test_doc_example_bytes(void **state)
{
	static const unsigned char doc[] = {
		0x00, 0x00, 0x00, 0x13,
		0x83, 0xa2, 0x69, 0x64, 0x07, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67,
		0xa4, 0x61, 0x72, 0x67, 0x73, 0x80,
	};
	struct pv_fbuf b;

	(void)state;
	pv_fbuf_init(&b);
	pv_enc_request(&b, 7, PV_OP_PING);
	pv_pack_map(&b, 0);
	assert_int_equal(pv_fbuf_finish(&b), 0);
	assert_int_equal(b.sb.size, sizeof(doc));
	assert_memory_equal(b.sb.data, doc, sizeof(doc));
	pv_fbuf_destroy(&b);
}

static void test_request_round_trip(void **state)
{
	struct pv_fbuf b;
	struct pv_frame f;
	char path[64];
	int64_t v;
	bool bl;

	(void)state;
	pv_fbuf_init(&b);
	pv_enc_request(&b, 1234567890123ull, PV_OP_WRITE_FILE);
	pv_pack_map(&b, 4);
	pv_pack_kv_str(&b, "path", "/tmp/x");
	pv_pack_kv_int(&b, "mode", -5);
	pv_pack_kv_bool(&b, "append", true);
	pv_pack_kv_bin(&b, "data", "a\0b", 3);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_REQUEST);
	assert_true(f.has_id);
	assert_true(f.id == 1234567890123ull);
	assert_string_equal(f.op, "write_file");
	assert_int_equal(pv_map_strcpy(f.args, "path", path, sizeof(path)), 0);
	assert_string_equal(path, "/tmp/x");
	assert_int_equal(pv_map_int(f.args, "mode", &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(pv_map_bool(f.args, "append", &bl), 0);
	assert_true(bl);
	/* NUL inside: not a valid C string, fine as bytes */
	assert_int_equal(pv_map_strcpy(f.args, "data", path, sizeof(path)), -EINVAL);
	assert_null(pv_map_strdup(f.args, "data"));
	const uint8_t *d;
	size_t n;
	assert_int_equal(pv_map_bytes(f.args, "data", &d, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(d, "a\0b", 3);
	assert_int_equal(pv_map_int(f.args, "missing", &v), -ENOENT);
	assert_int_equal(pv_map_int(f.args, "path", &v), -EINVAL);
	assert_int_equal(pv_map_strcpy(f.args, "path", path, 4), -ENAMETOOLONG);
	pv_frame_destroy(&f);
	pv_fbuf_destroy(&b);
}

static void test_reply_stream_eof_hello(void **state)
{
	static const char *const feats[] = { "exec", "tail" };
	struct pv_fbuf b;
	struct pv_frame f;
	int64_t v;

	(void)state;
	pv_fbuf_init(&b);
	pv_enc_reply_ok(&b, 9);
	pv_pack_map(&b, 1);
	pv_pack_kv_int(&b, "pid", 77);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_REPLY);
	assert_true(f.ok);
	assert_int_equal(pv_map_int(f.result, "pid", &v), 0);
	assert_int_equal(v, 77);
	pv_frame_destroy(&f);

	pv_fbuf_reset(&b);
	pv_enc_reply_err(&b, 9, EACCES, NULL, "open /x: Permission denied");
	frame_of(&b, &f);
	assert_false(f.ok);
	assert_int_equal(f.err, EACCES);
	assert_string_equal(f.code, "");
	assert_int_equal(f.message_len, strlen("open /x: Permission denied"));
	assert_true(pv_obj_streq(pv_map_get(f.root, "errname"), "EACCES"));
	pv_frame_destroy(&f);

	pv_fbuf_reset(&b);
	pv_enc_reply_err(&b, 0, EPROTO, PV_ERRCODE_PROTOCOL, "bad");
	frame_of(&b, &f);
	assert_string_equal(f.code, "protocol");
	assert_int_equal(f.id, 0);
	pv_frame_destroy(&f);

	pv_fbuf_reset(&b);
	pv_enc_stream(&b, 3, PV_STREAM_STDERR, "xyz", 3);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_STREAM);
	assert_string_equal(f.stream, "stderr");
	assert_false(f.eof);
	assert_int_equal(f.data_len, 3);
	assert_memory_equal(f.data, "xyz", 3);
	pv_frame_destroy(&f);

	pv_fbuf_reset(&b);
	pv_enc_eof(&b, 3, PV_STREAM_TAIL);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_STREAM);
	assert_true(f.eof);
	assert_string_equal(f.stream, "tail");
	pv_frame_destroy(&f);

	pv_fbuf_reset(&b);
	pv_enc_hello(&b, PV_ROLE_AGENT, feats, 2);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_HELLO);
	assert_string_equal(f.role, "agent");
	assert_int_equal(f.version, PROTOCOL_VERSION);
	assert_int_equal(f.features->via.array.size, 2);
	pv_frame_destroy(&f);
	pv_fbuf_destroy(&b);
}

static void test_hello_check_messages(void **state)
{
	struct pv_frame f = { .kind = PV_FRAME_HELLO, .version = PROTOCOL_VERSION };
	char err[200], want[100];

	(void)state;
	strcpy(f.role, "agent");
	assert_int_equal(pv_hello_check(&f, PV_ROLE_AGENT, err, sizeof(err)), 0);
	assert_int_equal(pv_hello_check(&f, PV_ROLE_HOST, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "expected the host"));
	f.version = PROTOCOL_VERSION + 7;
	assert_int_equal(pv_hello_check(&f, PV_ROLE_AGENT, err, sizeof(err)), -EPROTO);
	snprintf(want, sizeof(want), "protocol version mismatch: agent speaks %d, host speaks %d",
		 PROTOCOL_VERSION + 7, PROTOCOL_VERSION);
	assert_string_equal(err, want);
	f.kind = PV_FRAME_REQUEST;
	assert_int_equal(pv_hello_check(&f, PV_ROLE_AGENT, err, sizeof(err)), -EPROTO);
}

static void test_reader_incremental_and_batched(void **state)
{
	struct pv_frame_reader r;
	struct pv_frame f;
	struct pv_fbuf b;
	uint8_t stream[4096];
	size_t len = 0;

	(void)state;
	pv_fbuf_init(&b);
	for (int i = 0; i < 10; i++) {
		pv_fbuf_reset(&b);
		pv_enc_stream(&b, (uint64_t)i, PV_STREAM_STDOUT, "0123456789", (size_t)i);
		pv_fbuf_finish(&b);
		memcpy(stream + len, b.sb.data, b.sb.size);
		len += b.sb.size;
	}
	pv_fbuf_destroy(&b);

	/* byte by byte */
	pv_frame_reader_init(&r, 0);
	int got = 0;
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(pv_frame_reader_feed(&r, stream + i, 1), 0);
		while (pv_frame_reader_next(&r, &f) == 1) {
			assert_int_equal(f.id, (uint64_t)got);
			assert_int_equal(f.data_len, (size_t)got);
			got++;
			pv_frame_destroy(&f);
		}
	}
	assert_int_equal(got, 10);
	assert_int_equal(pv_frame_reader_pending(&r), 0);
	pv_frame_reader_free(&r);

	/* all at once through reserve/commit; frames stay valid after more feeding */
	pv_frame_reader_init(&r, 0);
	size_t room;
	void *p = pv_frame_reader_reserve(&r, len, &room);
	assert_non_null(p);
	assert_true(room >= len);
	memcpy(p, stream, len);
	pv_frame_reader_commit(&r, len);
	struct pv_frame first;
	assert_int_equal(pv_frame_reader_next(&r, &first), 1);
	assert_int_equal(pv_frame_reader_feed(&r, stream, len), 0); /* reuse the buffer */
	got = 1;
	while (pv_frame_reader_next(&r, &f) == 1) {
		got++;
		pv_frame_destroy(&f);
	}
	assert_int_equal(got, 20);
	assert_int_equal(first.id, 0);
	assert_string_equal(first.stream, "stdout");
	pv_frame_destroy(&first);
	pv_frame_reader_free(&r);
}

static void test_reader_oversized_is_sticky(void **state)
{
	static const uint8_t huge[] = { 0x00, 0x20, 0x00, 0x00, 0x80 };
	struct pv_frame_reader r;
	struct pv_frame f;

	(void)state;
	pv_frame_reader_init(&r, 0);
	pv_frame_reader_feed(&r, huge, sizeof(huge));
	assert_int_equal(pv_frame_reader_next(&r, &f), -EMSGSIZE);
	assert_non_null(strstr(r.err, "exceeds the limit"));
	assert_int_equal(pv_frame_reader_next(&r, &f), -EMSGSIZE);
	pv_frame_destroy(&f);
	pv_frame_reader_free(&r);
}

static void test_reader_malformed_is_skipped(void **state)
{
	/* a frame announcing 2^32-1 array elements in 5 bytes, then a good frame */
	static const uint8_t bad[] = { 0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff,
				       0, 0, 0, 1, 0x80 };
	struct pv_frame_reader r;
	struct pv_frame f;

	(void)state;
	pv_frame_reader_init(&r, 0);
	pv_frame_reader_feed(&r, bad, sizeof(bad));
	assert_int_equal(pv_frame_reader_next(&r, &f), -EBADMSG);
	assert_non_null(strstr(r.err, "announces"));
	assert_int_equal(pv_frame_reader_next(&r, &f), 1);
	assert_int_equal(f.kind, PV_FRAME_INVALID); /* an empty map: no known shape */
	pv_frame_destroy(&f);
	assert_int_equal(pv_frame_reader_next(&r, &f), 0);
	pv_frame_reader_free(&r);
}

static void test_decoder_rejects(void **state)
{
	static const struct { const char *what; const char *bytes; size_t len; } cases[] = {
		{ "not a map", "\x93\x01\x02\x03", 4 },
		{ "trailing", "\x80\x80", 2 },
		{ "truncated", "\x82\xa2id\x01", 5 },
		{ "reserved byte", "\xc1", 1 },
		{ "empty", "", 0 },
		{ "str32 too long", "\x81\xa1k\xdb\xff\xff\xff\xff", 8 },
	};
	char deep[64];
	struct pv_frame f;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(pv_frame_decode(cases[i].bytes, cases[i].len, &f, err, sizeof(err)),
				 -EBADMSG);
		pv_frame_destroy(&f);
	}
	/* nesting: PV_PROTO_MAX_DEPTH levels are fine, one more is not */
	deep[0] = (char)0x81;
	deep[1] = (char)0xa1;
	deep[2] = 'k';
	memset(deep + 3, 0x91, PV_PROTO_MAX_DEPTH - 1);
	deep[3 + PV_PROTO_MAX_DEPTH - 1] = (char)0xc0;
	assert_int_equal(pv_frame_decode(deep, 3 + PV_PROTO_MAX_DEPTH, &f, err, sizeof(err)), 0);
	pv_frame_destroy(&f);
	memset(deep + 3, 0x91, PV_PROTO_MAX_DEPTH);
	deep[3 + PV_PROTO_MAX_DEPTH] = (char)0xc0;
	assert_int_equal(pv_frame_decode(deep, 4 + PV_PROTO_MAX_DEPTH, &f, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "deeper"));
	pv_frame_destroy(&f);
}

static void test_shapes_that_are_not_frames(void **state)
{
	struct pv_fbuf b;
	struct pv_frame f;

	(void)state;
	pv_fbuf_init(&b);
	/* request whose args is not a map */
	pv_pack_map(&b, 3);
	pv_pack_kv_uint(&b, "id", 1);
	pv_pack_kv_str(&b, "op", "ping");
	pv_pack_kv_int(&b, "args", 5);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_INVALID);
	pv_frame_destroy(&f);
	/* a stream frame without data or eof */
	pv_fbuf_reset(&b);
	pv_pack_map(&b, 2);
	pv_pack_kv_uint(&b, "id", 1);
	pv_pack_kv_str(&b, "stream", "stdout");
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_INVALID);
	pv_frame_destroy(&f);
	/* a reply without an id */
	pv_fbuf_reset(&b);
	pv_pack_map(&b, 1);
	pv_pack_kv_bool(&b, "ok", true);
	frame_of(&b, &f);
	assert_int_equal(f.kind, PV_FRAME_INVALID);
	pv_frame_destroy(&f);
	pv_fbuf_destroy(&b);
}

static void test_accessors_and_limits(void **state)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_FLOAT64 };
	struct pv_fbuf b;
	int64_t v;
	static uint8_t big[PV_PROTO_MAX_FRAME];

	(void)state;
	o.via.f64 = 42.0;
	assert_int_equal(pv_obj_int(&o, &v), 0);
	assert_int_equal(v, 42);
	o.via.f64 = 1.5;
	assert_int_equal(pv_obj_int(&o, &v), -EINVAL);
	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o.via.u64 = UINT64_MAX;
	assert_int_equal(pv_obj_int(&o, &v), -EINVAL);
	assert_null(pv_map_get(NULL, "x"));
	assert_string_equal(pv_errno_name(ENOENT), "ENOENT");
	assert_string_equal(pv_errno_name(9999), "E9999");

	/* a payload over the limit cannot be finished */
	pv_fbuf_init(&b);
	pv_enc_stream(&b, 1, PV_STREAM_DATA, big, sizeof(big));
	assert_int_equal(pv_fbuf_finish(&b), -EMSGSIZE);
	pv_fbuf_reset(&b);
	pv_enc_stream(&b, 1, PV_STREAM_DATA, big, PV_PROTO_MAX_DATA);
	assert_int_equal(pv_fbuf_finish(&b), 0);
	pv_fbuf_destroy(&b);
}

/* ---- the fuzz target: regression corpus, random and mutated inputs ---- */

static void test_fuzz_regression_corpus(void **state)
{
	(void)state;
	int n = fuzz_replay("frame", pv_fuzz_frame, 0, 1);
	if (n < 0)
		fail_msg("tests/fuzz/frame_corpus is missing (run from the repository root)");
	assert_true(n >= 20);
}

static void test_fuzz_random_and_mutated(void **state)
{
	static const char *const ops[] = { "exec", "stat", "spawn", "write" };
	unsigned seed = 20261128;
	uint8_t buf[1024];

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		size_t len;

		if (iter % 2) {
			/* pure noise, with a plausible length prefix half the time */
			len = 1 + (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rand_r(&seed);
			if (len > 5 && iter % 4 == 1) {
				buf[1] = buf[2] = 0;
				buf[3] = (uint8_t)((len - 5) >> 8);
				buf[4] = (uint8_t)(len - 5);
			}
		} else {
			/* a valid request, then a few bytes flipped, cut or extended */
			struct pv_fbuf b;

			pv_fbuf_init(&b);
			pv_enc_request(&b, (uint64_t)iter, ops[iter % 4]);
			pv_pack_map(&b, 3);
			pv_pack_kv_str(&b, "path", "/tmp/x");
			pv_pack_str(&b, "argv");
			pv_pack_array(&b, 2);
			pv_pack_str(&b, "a");
			pv_pack_int(&b, -3);
			pv_pack_kv_bin(&b, "data", "zz", 2);
			pv_fbuf_finish(&b);
			len = b.sb.size + 1 < sizeof(buf) ? b.sb.size + 1 : sizeof(buf);
			buf[0] = (uint8_t)rand_r(&seed);
			memcpy(buf + 1, b.sb.data, len - 1);
			pv_fbuf_destroy(&b);
			for (int k = rand_r(&seed) % 4; k >= 0; k--)
				buf[1 + (size_t)rand_r(&seed) % (len - 1)] ^= (uint8_t)(1 << (rand_r(&seed) % 8));
			if (rand_r(&seed) % 3 == 0)
				len = 1 + (size_t)rand_r(&seed) % len;
		}
		pv_fuzz_frame(buf, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_example_bytes),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_reply_stream_eof_hello),
		cmocka_unit_test(test_hello_check_messages),
		cmocka_unit_test(test_reader_incremental_and_batched),
		cmocka_unit_test(test_reader_oversized_is_sticky),
		cmocka_unit_test(test_reader_malformed_is_skipped),
		cmocka_unit_test(test_decoder_rejects),
		cmocka_unit_test(test_shapes_that_are_not_frames),
		cmocka_unit_test(test_accessors_and_limits),
		cmocka_unit_test(test_fuzz_regression_corpus),
		cmocka_unit_test(test_fuzz_random_and_mutated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
