/* report.c — what every reporter shares: the run's tally, durations, and the
 * msgpack -> JSON conversion. */
#include "runner/report.h"
#include "vmm/util.h"

#include <stdlib.h>
#include <string.h>

void tally_event(struct tally *t, const msgpack_object *pub)
{
	char kind[32];
	ev_kind(pub, kind, sizeof(kind));
	if (!strcmp(kind, "run_start")) {
		const msgpack_object *f = ev_get(pub, "files");
		t->files_total = f && f->type == MSGPACK_OBJECT_ARRAY ? f->via.array.size : 0;
	} else if (!strcmp(kind, "test_end")) {
		const msgpack_object *o = ev_get(pub, "outcome");
		t->tests_ended++;
		if (ev_is_str(o, "pass"))
			t->c.passed++;
		else if (ev_is_str(o, "fail"))
			t->c.failed++;
		else if (ev_is_str(o, "skip"))
			t->c.skipped++;
		else if (ev_is_str(o, "todo"))
			t->c.todo++;
		else
			t->c.errors++;
	} else if (!strcmp(kind, "file_end")) {
		t->files_done++;
		if (ev_get(pub, "error")) {
			t->file_errors++;
			t->c.errors++;
		}
	} else if (!strcmp(kind, "vm_spawn")) {
		t->vms_running++;
	} else if (!strcmp(kind, "vm_exit")) {
		if (t->vms_running > 0)
			t->vms_running--;
	}
}

void report_fmt_duration(char *buf, size_t cap, uint64_t ns)
{
	if (ns >= 1000000000ull)
		snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, cap, "%llu ms", (unsigned long long)(ns / 1000000ull));
	else
		snprintf(buf, cap, "%llu us", (unsigned long long)(ns / 1000ull));
}

/* Valid UTF-8 copy: bytes that do not form UTF-8 become '?'. */
static json_t *str_json(const char *p, size_t n)
{
	json_t *j = json_stringn(p, n);
	if (j)
		return j;
	char *c = malloc(n + 1);
	if (!c)
		return json_null();
	for (size_t i = 0; i < n;) {
		unsigned char b = (unsigned char)p[i];
		size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
		bool ok = len && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)p[i + k] >> 6) == 2;
		if (ok && b == 0)
			ok = false; /* NUL: jansson accepts it in stringn, but keep text printable */
		if (!ok) {
			c[i++] = '?';
			continue;
		}
		memcpy(c + i, p + i, len);
		i += len;
	}
	j = json_stringn(c, n);
	free(c);
	return j ? j : json_null();
}

json_t *report_mp_to_json(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return json_null();
	case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return json_integer(o->via.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR: return str_json(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN: return str_json(o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		for (uint32_t i = 0; i < o->via.array.size; i++)
			json_array_append_new(a, report_mp_to_json(&o->via.array.ptr[i]));
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			char key[256];
			if (k->type == MSGPACK_OBJECT_STR) {
				size_t n = k->via.str.size < sizeof(key) - 1 ? k->via.str.size : sizeof(key) - 1;
				memcpy(key, k->via.str.ptr, n);
				key[n] = 0;
			} else {
				msgpack_object_print_buffer(key, sizeof(key), *k);
			}
			json_object_set_new(m, key, report_mp_to_json(&o->via.map.ptr[i].val));
		}
		return m;
	}
	default: return json_null(); /* EXT */
	}
}
