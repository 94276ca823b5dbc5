/* fuzz_frame.h — the frame-decoder fuzz target, shared by the libFuzzer harness
 * (tests/fuzz/fuzz_main.c, `make fuzz`) and the randomized unit test (tests/unit/test_proto.c,
 * run under ASan+UBSan by `make check-asan`). Input: byte 0 picks how the rest is
 * split into reads; the rest is a byte stream of frames fed to the incremental
 * reader, and also decoded directly as one payload. Every decoded frame is walked
 * through the accessors the agent and host use. */
#ifndef PROVIUM_FUZZ_FRAME_H
#define PROVIUM_FUZZ_FRAME_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/proto.h"

static inline void pv_fuzz_touch(const struct pv_frame *f)
{
	static const char *const keys[] = { "path", "cmd", "argv", "env", "pid", "fd",
					    "data", "n", "ns", "mode", "stream" };
	volatile size_t sink = 0;
	char buf[64];
	int64_t v;
	bool bl;
	const uint8_t *d;
	size_t n;

	sink += f->kind + f->id + f->data_len + f->message_len + (size_t)f->version;
	if (f->data && f->data_len)
		sink += f->data[0] + f->data[f->data_len - 1];
	if (f->message && f->message_len)
		sink += (uint8_t)f->message[f->message_len - 1];
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const msgpack_object *m = f->args ? f->args : f->result;
		char *s;

		if (pv_map_int(m, keys[i], &v) == 0)
			sink += (size_t)v;
		if (pv_map_bool(m, keys[i], &bl) == 0)
			sink += bl;
		if (pv_map_strcpy(m, keys[i], buf, sizeof(buf)) == 0)
			sink += strlen(buf);
		if (pv_map_bytes(m, keys[i], &d, &n) == 0 && n)
			sink += d[n - 1];
		if ((s = pv_map_strdup(m, keys[i]))) {
			sink += strlen(s);
			free(s);
		}
	}
	if (f->features)
		for (uint32_t i = 0; i < f->features->via.array.size; i++)
			sink += pv_obj_strcpy(&f->features->via.array.ptr[i], buf, sizeof(buf)) == 0;
	if (f->kind == PV_FRAME_HELLO) {
		char err[200];

		sink += pv_hello_check(f, PV_ROLE_HOST, err, sizeof(err)) == 0;
	}
	(void)sink;
}

static inline int pv_fuzz_frame(const uint8_t *data, size_t size)
{
	struct pv_frame_reader r;
	struct pv_frame f;
	size_t step, off = 0;
	char err[160];
	int rc;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;

	/* direct decode of the whole input as one payload */
	if (pv_frame_decode(data, size, &f, err, sizeof(err)) == 0)
		pv_fuzz_touch(&f);
	pv_frame_destroy(&f);

	/* incremental: feed in pieces, take frames out as they complete; a small
	 * max_frame keeps the fuzzer's allocations small */
	pv_frame_reader_init(&r, 1 << 16);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		if (pv_frame_reader_feed(&r, data + off, n) < 0)
			break;
		off += n;
		while ((rc = pv_frame_reader_next(&r, &f)) != 0) {
			if (rc == 1)
				pv_fuzz_touch(&f);
			pv_frame_destroy(&f);
			if (rc == -EMSGSIZE)
				goto out;
		}
	}
out:
	pv_frame_reader_free(&r);
	return 0;
}

#endif
