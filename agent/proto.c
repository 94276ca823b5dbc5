/* proto.c — the host–agent wire codec shared by the host library and the agent:
 * frame encoding, the incremental frame reader, frame classification and small
 * msgpack accessors. Self-contained (no vmm/util.c: the agent does not link it). */
#include "agent/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ---- */

void pv_fbuf_init(struct pv_fbuf *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	pv_fbuf_reset(b);
}

void pv_fbuf_reset(struct pv_fbuf *b)
{
	static const char zero[4];

	b->sb.size = 0;
	msgpack_sbuffer_write(&b->sb, zero, 4); /* the length, patched by finish */
}

void pv_fbuf_destroy(struct pv_fbuf *b)
{
	msgpack_sbuffer_destroy(&b->sb);
	b->sb.data = NULL;
	b->sb.size = b->sb.alloc = 0;
}

int pv_fbuf_finish(struct pv_fbuf *b)
{
	size_t n = b->sb.size - 4;
	uint8_t *p = (uint8_t *)b->sb.data;

	if (n > PV_PROTO_MAX_FRAME)
		return -EMSGSIZE;
	p[0] = (uint8_t)(n >> 24);
	p[1] = (uint8_t)(n >> 16);
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)n;
	return 0;
}

void pv_pack_map(struct pv_fbuf *b, uint32_t n) { msgpack_pack_map(&b->pk, n); }
void pv_pack_array(struct pv_fbuf *b, uint32_t n) { msgpack_pack_array(&b->pk, n); }
void pv_pack_int(struct pv_fbuf *b, int64_t v) { msgpack_pack_int64(&b->pk, v); }
void pv_pack_uint(struct pv_fbuf *b, uint64_t v) { msgpack_pack_uint64(&b->pk, v); }
void pv_pack_nil(struct pv_fbuf *b) { msgpack_pack_nil(&b->pk); }
void pv_pack_double(struct pv_fbuf *b, double v) { msgpack_pack_double(&b->pk, v); }

void pv_pack_bool(struct pv_fbuf *b, bool v)
{
	if (v)
		msgpack_pack_true(&b->pk);
	else
		msgpack_pack_false(&b->pk);
}

void pv_pack_strn(struct pv_fbuf *b, const char *s, size_t len)
{
	msgpack_pack_str(&b->pk, len);
	msgpack_pack_str_body(&b->pk, s, len);
}

void pv_pack_str(struct pv_fbuf *b, const char *s)
{
	pv_pack_strn(b, s, strlen(s));
}

void pv_pack_bin(struct pv_fbuf *b, const void *data, size_t len)
{
	msgpack_pack_bin(&b->pk, len);
	if (len)
		msgpack_pack_bin_body(&b->pk, data, len);
}

void pv_pack_kv_str(struct pv_fbuf *b, const char *key, const char *v)
{
	pv_pack_str(b, key);
	pv_pack_str(b, v);
}

void pv_pack_kv_bin(struct pv_fbuf *b, const char *key, const void *data, size_t len)
{
	pv_pack_str(b, key);
	pv_pack_bin(b, data, len);
}

void pv_pack_kv_int(struct pv_fbuf *b, const char *key, int64_t v)
{
	pv_pack_str(b, key);
	pv_pack_int(b, v);
}

void pv_pack_kv_uint(struct pv_fbuf *b, const char *key, uint64_t v)
{
	pv_pack_str(b, key);
	pv_pack_uint(b, v);
}

void pv_pack_kv_bool(struct pv_fbuf *b, const char *key, bool v)
{
	pv_pack_str(b, key);
	pv_pack_bool(b, v);
}

void pv_enc_hello(struct pv_fbuf *b, const char *role, const char *const *features,
		  size_t nfeatures)
{
	pv_pack_map(b, 3);
	pv_pack_kv_str(b, "hello", role);
	pv_pack_kv_int(b, "v", PROTOCOL_VERSION);
	pv_pack_str(b, "features");
	pv_pack_array(b, (uint32_t)nfeatures);
	for (size_t i = 0; i < nfeatures; i++)
		pv_pack_str(b, features[i]);
}

void pv_enc_request(struct pv_fbuf *b, uint64_t id, const char *op)
{
	pv_pack_map(b, 3);
	pv_pack_kv_uint(b, "id", id);
	pv_pack_kv_str(b, "op", op);
	pv_pack_str(b, "args");
}

void pv_enc_reply_ok(struct pv_fbuf *b, uint64_t id)
{
	pv_pack_map(b, 3);
	pv_pack_kv_uint(b, "id", id);
	pv_pack_kv_bool(b, "ok", true);
	pv_pack_str(b, "result");
}

void pv_enc_reply_err(struct pv_fbuf *b, uint64_t id, int err, const char *code,
		      const char *message)
{
	pv_pack_map(b, code ? 6 : 5);
	pv_pack_kv_uint(b, "id", id);
	pv_pack_kv_bool(b, "ok", false);
	pv_pack_kv_int(b, "errno", err);
	pv_pack_kv_str(b, "errname", pv_errno_name(err));
	pv_pack_kv_str(b, "message", message ? message : "");
	if (code)
		pv_pack_kv_str(b, "code", code);
}

void pv_enc_stream(struct pv_fbuf *b, uint64_t id, const char *stream,
		   const void *data, size_t len)
{
	pv_pack_map(b, 3);
	pv_pack_kv_uint(b, "id", id);
	pv_pack_kv_str(b, "stream", stream);
	pv_pack_kv_bin(b, "data", data, len);
}

void pv_enc_eof(struct pv_fbuf *b, uint64_t id, const char *stream)
{
	pv_pack_map(b, 3);
	pv_pack_kv_uint(b, "id", id);
	pv_pack_kv_str(b, "stream", stream);
	pv_pack_kv_bool(b, "eof", true);
}

/* ---- accessors ---- */

bool pv_obj_streq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *pv_map_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (pv_obj_streq(&map->via.map.ptr[i].key, key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

static int obj_bytes(const msgpack_object *o, const uint8_t **data, size_t *len)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*data = (const uint8_t *)o->via.str.ptr;
		*len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		*data = (const uint8_t *)o->via.bin.ptr;
		*len = o->via.bin.size;
	} else {
		return -EINVAL;
	}
	return 0;
}

int pv_obj_strcpy(const msgpack_object *o, char *buf, size_t size)
{
	const uint8_t *d;
	size_t n;

	if (!o || obj_bytes(o, &d, &n) < 0 || (n && memchr(d, 0, n)))
		return -EINVAL;
	if (n >= size)
		return -ENAMETOOLONG;
	if (n)
		memcpy(buf, d, n);
	buf[n] = 0;
	return 0;
}

int pv_obj_int(const msgpack_object *o, int64_t *out)
{
	if (!o)
		return -EINVAL;
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return -EINVAL;
		*out = (int64_t)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = o->via.i64;
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: {
		double d = o->via.f64;

		/* Lua numbers may arrive as floats; accept exact integers only. */
		if (!(d >= -9.2e18 && d <= 9.2e18) || (double)(int64_t)d != d)
			return -EINVAL;
		*out = (int64_t)d;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

static const msgpack_object *map_val(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = pv_map_get(map, key);

	return (o && o->type != MSGPACK_OBJECT_NIL) ? o : NULL;
}

int pv_map_int(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object *o = map_val(map, key);

	return o ? pv_obj_int(o, out) : -ENOENT;
}

int pv_map_bool(const msgpack_object *map, const char *key, bool *out)
{
	const msgpack_object *o = map_val(map, key);

	if (!o)
		return -ENOENT;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return -EINVAL;
	*out = o->via.boolean;
	return 0;
}

int pv_map_strcpy(const msgpack_object *map, const char *key, char *buf, size_t size)
{
	const msgpack_object *o = map_val(map, key);

	return o ? pv_obj_strcpy(o, buf, size) : -ENOENT;
}

int pv_map_bytes(const msgpack_object *map, const char *key, const uint8_t **data,
		 size_t *len)
{
	const msgpack_object *o = map_val(map, key);

	return o ? obj_bytes(o, data, len) : -ENOENT;
}

char *pv_map_strdup(const msgpack_object *map, const char *key)
{
	const uint8_t *d;
	size_t n;
	char *s;

	if (pv_map_bytes(map, key, &d, &n) < 0 || (n && memchr(d, 0, n)))
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	if (n)
		memcpy(s, d, n);
	s[n] = 0;
	return s;
}

const char *pv_errno_name(int err)
{
	static __thread char buf[16];
	const char *s = err > 0 ? strerrorname_np(err) : NULL;

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* ---- decoding ---- */

/* Walks the msgpack encoding in p[0..len) without allocating, checking that it is
 * exactly one complete object, nesting at most PV_PROTO_MAX_DEPTH deep, and that no
 * array/map announces more elements than bytes remain. msgpack-c allocates an
 * announced count before reading the elements, so a 5-byte frame could otherwise ask
 * for gigabytes. Returns 0 or -EBADMSG with a reason. (proto.h; the snapshot
 * loader checks vm.state with it too.) */
int pv_msgpack_check(const void *data, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = data;
	uint64_t left[PV_PROTO_MAX_DEPTH + 1]; /* elements still to read per level */
	int depth = 0;
	size_t off = 0;

	left[0] = 1;
	while (depth > 0 || left[0] > 0) {
		uint8_t t;
		uint64_t n = 0, body = 0, count = 0;

		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (off >= len)
			goto truncated;
		t = p[off++];
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
			/* fixint, nil, bool: no body */
		} else if ((t & 0xe0) == 0xa0) {
			body = t & 0x1f;
		} else if ((t & 0xf0) == 0x90) {
			count = t & 0x0f;
		} else if ((t & 0xf0) == 0x80) {
			count = 2ull * (t & 0x0f);
		} else {
			int lb = 0; /* size of a length field that follows */

			switch (t) {
			case 0xc4: case 0xd9: lb = 1; break;   /* bin8, str8 */
			case 0xc5: case 0xda: lb = 2; break;   /* bin16, str16 */
			case 0xc6: case 0xdb: lb = 4; break;   /* bin32, str32 */
			case 0xc7: lb = 1; body = 1; break;    /* ext8: +type byte */
			case 0xc8: lb = 2; body = 1; break;
			case 0xc9: lb = 4; body = 1; break;
			case 0xcc: case 0xd0: body = 1; break;
			case 0xcd: case 0xd1: body = 2; break;
			case 0xca: case 0xce: case 0xd2: body = 4; break;
			case 0xcb: case 0xcf: case 0xd3: body = 8; break;
			case 0xd4: body = 2; break;            /* fixext: type + data */
			case 0xd5: body = 3; break;
			case 0xd6: body = 5; break;
			case 0xd7: body = 9; break;
			case 0xd8: body = 17; break;
			case 0xdc: case 0xde: lb = 2; break;   /* array16, map16 */
			case 0xdd: case 0xdf: lb = 4; break;   /* array32, map32 */
			default:
				snprintf(err, errlen, "invalid msgpack type byte 0x%02x at %zu",
					 t, off - 1);
				return -EBADMSG;
			}
			if (lb) {
				if (len - off < (size_t)lb)
					goto truncated;
				for (int i = 0; i < lb; i++)
					n = (n << 8) | p[off++];
				if (t == 0xdc || t == 0xdd)
					count = n;
				else if (t == 0xde || t == 0xdf)
					count = 2 * n;
				else
					body += n;
			}
		}
		if (body) {
			if (len - off < body)
				goto truncated;
			off += body;
		}
		if (count) {
			if (count > len - off) {
				snprintf(err, errlen,
					 "msgpack container announces %llu elements with %zu bytes left",
					 (unsigned long long)count, len - off);
				return -EBADMSG;
			}
			if (depth == PV_PROTO_MAX_DEPTH) {
				snprintf(err, errlen, "msgpack nested deeper than %d",
					 PV_PROTO_MAX_DEPTH);
				return -EBADMSG;
			}
			left[++depth] = count;
		}
	}
	if (off != len) {
		snprintf(err, errlen, "%zu trailing bytes after the msgpack map", len - off);
		return -EBADMSG;
	}
	return 0;
truncated:
	snprintf(err, errlen, "truncated msgpack object (%zu bytes)", len);
	return -EBADMSG;
}

static void copy_small(const msgpack_object *o, char *buf, size_t size)
{
	if (pv_obj_strcpy(o, buf, size) < 0)
		buf[0] = 0;
}

static void classify(struct pv_frame *f)
{
	const msgpack_object *m = f->root, *o;
	int64_t v;

	if ((o = pv_map_get(m, "id")) && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		f->has_id = true;
		f->id = o->via.u64;
	}
	if ((o = pv_map_get(m, "hello"))) {
		copy_small(o, f->role, sizeof(f->role));
		if (pv_map_int(m, "v", &v) == 0)
			f->version = v;
		o = pv_map_get(m, "features");
		f->features = (o && o->type == MSGPACK_OBJECT_ARRAY) ? o : NULL;
		f->kind = (f->role[0] && f->version) ? PV_FRAME_HELLO : PV_FRAME_INVALID;
		return;
	}
	if ((o = pv_map_get(m, "op"))) {
		copy_small(o, f->op, sizeof(f->op));
		o = pv_map_get(m, "args");
		f->args = (o && o->type == MSGPACK_OBJECT_MAP) ? o : NULL;
		/* args present but not a map is malformed; absent/nil means none */
		if (f->op[0] && (!o || o->type == MSGPACK_OBJECT_NIL || f->args))
			f->kind = PV_FRAME_REQUEST;
		return;
	}
	if ((o = pv_map_get(m, "ok"))) {
		if (o->type != MSGPACK_OBJECT_BOOLEAN || !f->has_id)
			return;
		f->ok = o->via.boolean;
		if (f->ok) {
			o = pv_map_get(m, "result");
			f->result = (o && o->type == MSGPACK_OBJECT_MAP) ? o : NULL;
		} else {
			const uint8_t *msg;

			if (pv_map_int(m, "errno", &v) == 0 && v >= 0 && v < 4096)
				f->err = (int)v;
			else
				f->err = EIO;
			if ((o = pv_map_get(m, "code")))
				copy_small(o, f->code, sizeof(f->code));
			if (pv_map_bytes(m, "message", &msg, &f->message_len) == 0)
				f->message = (const char *)msg;
			else
				f->message = "", f->message_len = 0;
		}
		f->kind = PV_FRAME_REPLY;
		return;
	}
	if ((o = pv_map_get(m, "stream"))) {
		bool eof = false;

		copy_small(o, f->stream, sizeof(f->stream));
		if (!f->stream[0] || !f->has_id)
			return;
		if (pv_map_bool(m, "eof", &eof) == 0 && eof) {
			f->eof = true;
		} else if (pv_map_bytes(m, "data", &f->data, &f->data_len) < 0) {
			return;
		}
		f->kind = PV_FRAME_STREAM;
	}
}

int pv_frame_decode(const void *payload, size_t len, struct pv_frame *f, char *err,
		    size_t errlen)
{
	size_t off = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	msgpack_unpacked_init(&f->up);
	rc = pv_msgpack_check(payload, len, err, errlen);
	if (rc < 0)
		goto fail;
	f->raw = malloc(len ? len : 1);
	if (!f->raw) {
		snprintf(err, errlen, "out of memory for a %zu byte frame", len);
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(f->raw, payload, len);
	if (msgpack_unpack_next(&f->up, f->raw, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		snprintf(err, errlen, "msgpack decoder rejected the frame");
		rc = -EBADMSG;
		goto fail;
	}
	if (f->up.data.type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "frame is not a msgpack map");
		rc = -EBADMSG;
		goto fail;
	}
	f->root = &f->up.data;
	classify(f);
	return 0;
fail:
	msgpack_unpacked_destroy(&f->up);
	free(f->raw);
	memset(f, 0, sizeof(*f));
	msgpack_unpacked_init(&f->up);
	return rc;
}

void pv_frame_destroy(struct pv_frame *f)
{
	msgpack_unpacked_destroy(&f->up);
	free(f->raw);
	memset(f, 0, sizeof(*f));
	msgpack_unpacked_init(&f->up);
}

int pv_hello_check(const struct pv_frame *f, const char *expected_role, char *err,
		   size_t errlen)
{
	const char *me = strcmp(expected_role, PV_ROLE_AGENT) == 0 ? PV_ROLE_HOST
								   : PV_ROLE_AGENT;

	if (f->kind != PV_FRAME_HELLO) {
		snprintf(err, errlen, "expected a hello frame from the %s first",
			 expected_role);
		return -EPROTO;
	}
	if (strcmp(f->role, expected_role) != 0) {
		snprintf(err, errlen, "hello from a '%s', expected the %s", f->role,
			 expected_role);
		return -EPROTO;
	}
	if (f->version != PROTOCOL_VERSION) {
		snprintf(err, errlen,
			 "protocol version mismatch: %s speaks %lld, %s speaks %d",
			 expected_role, (long long)f->version, me, PROTOCOL_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* ---- the incremental reader ---- */

void pv_frame_reader_init(struct pv_frame_reader *r, size_t max_frame)
{
	memset(r, 0, sizeof(*r));
	r->max_frame = max_frame ? max_frame : PV_PROTO_MAX_FRAME;
}

void pv_frame_reader_free(struct pv_frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->start = r->len = r->cap = 0;
}

size_t pv_frame_reader_pending(const struct pv_frame_reader *r)
{
	return r->len;
}

void *pv_frame_reader_reserve(struct pv_frame_reader *r, size_t want, size_t *room)
{
	if (r->start && (r->start + r->len + want > r->cap)) {
		memmove(r->buf, r->buf + r->start, r->len);
		r->start = 0;
	}
	if (r->start + r->len + want > r->cap) {
		size_t cap = r->cap ? r->cap : 65536;
		uint8_t *nb;

		while (cap < r->len + want)
			cap *= 2;
		nb = realloc(r->buf, cap);
		if (!nb)
			return NULL;
		r->buf = nb;
		r->cap = cap;
	}
	if (room)
		*room = r->cap - r->start - r->len;
	return r->buf + r->start + r->len;
}

void pv_frame_reader_commit(struct pv_frame_reader *r, size_t n)
{
	r->len += n;
}

int pv_frame_reader_feed(struct pv_frame_reader *r, const void *data, size_t len)
{
	void *p;

	if (!len)
		return 0;
	p = pv_frame_reader_reserve(r, len, NULL);
	if (!p)
		return -ENOMEM;
	memcpy(p, data, len);
	pv_frame_reader_commit(r, len);
	return 0;
}

int pv_frame_reader_next(struct pv_frame_reader *r, struct pv_frame *f)
{
	const uint8_t *p;
	size_t n;
	int rc;

	memset(f, 0, sizeof(*f));
	msgpack_unpacked_init(&f->up);
	if (r->fatal)
		return r->fatal;
	if (r->len < 4)
		return 0;
	p = r->buf + r->start;
	n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (n > r->max_frame) {
		snprintf(r->err, sizeof(r->err), "frame of %zu bytes exceeds the limit of %zu",
			 n, r->max_frame);
		r->fatal = -EMSGSIZE;
		return r->fatal;
	}
	if (r->len - 4 < n)
		return 0;
	rc = pv_frame_decode(p + 4, n, f, r->err, sizeof(r->err));
	r->start += 4 + n;
	r->len -= 4 + n;
	if (!r->len)
		r->start = 0;
	return rc < 0 ? rc : 1;
}
