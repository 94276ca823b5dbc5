/* proto.h — the host–agent wire protocol and PROTOCOL_VERSION (RUNNER.md).
 *
 * One codec, compiled into both ends (agent/proto.c is in build/libprovium.a and in
 * the static build/provium-agent). docs/protocol.md is the readable contract: every
 * op with its args, result fields, stream frames and errors.
 *
 * Wire: a frame is a u32 big-endian payload length followed by exactly one msgpack
 * map of that many bytes. Frame shapes (keys are always written in this order):
 *   hello    {hello="agent"|"host", v=PROTOCOL_VERSION, features=[str...]}
 *   request  {id=uint, op=str, args=map}
 *   reply    {id, ok=true, result=map}
 *            {id, ok=false, errno=int, errname=str, message=str [, code=str]}
 *   stream   {id, stream=str, data=bin}
 *   eof      {id, stream=str, eof=true}
 * Readers must ignore unknown keys (additive changes do not bump the version).
 *
 * Using it as a non-blocking client (the host side):
 *   struct pv_frame_reader r; pv_frame_reader_init(&r, 0);
 *   on POLLIN:  void *p = pv_frame_reader_reserve(&r, 65536, &room);
 *               n = read(fd, p, room); pv_frame_reader_commit(&r, n);
 *               struct pv_frame f;
 *               while ((rc = pv_frame_reader_next(&r, &f)) == 1) { ...; pv_frame_destroy(&f); }
 *               rc < 0: r.err says why (-EMSGSIZE: close; -EBADMSG: frame skipped).
 *   to send:    struct pv_fbuf b; pv_fbuf_init(&b);
 *               pv_enc_request(&b, id, PV_OP_STAT); pv_pack_map(&b, 1);
 *               pv_pack_kv_str(&b, "path", "/etc/hostname");
 *               pv_fbuf_finish(&b) -> b.sb.data / b.sb.size are the frame bytes. */
#ifndef PROVIUM_PROTO_H
#define PROVIUM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/* Pins the wire shape of the host–agent protocol AND the event stream.
 * Bump when a field is removed, renamed or changes type, or a message changes
 * meaning (docs/protocol.md). */
#define PROTOCOL_VERSION 1

/* Largest payload a reader accepts (bigger: -EMSGSIZE, the connection is closed with
 * a reason). Writers keep data fields at or below PV_PROTO_MAX_DATA. */
#define PV_PROTO_MAX_FRAME   (1024 * 1024 + 64 * 1024)
#define PV_PROTO_MAX_DATA    (1024 * 1024)
/* Size of the chunks of streamed data (read_file, write_file, exec/spawn output). */
#define PV_PROTO_CHUNK       (256 * 1024)
/* Deepest nesting of arrays/maps a reader accepts. */
#define PV_PROTO_MAX_DEPTH   16
#define PV_AGENT_VSOCK_PORT  1024

/* Exit status of a non-PID-1 agent asked to power off / reboot without
 * --allow-reboot (so /init can do it). */
#define PV_AGENT_EXIT_POWEROFF 0
#define PV_AGENT_EXIT_REBOOT   64

/* Roles in hello frames. */
#define PV_ROLE_AGENT "agent"
#define PV_ROLE_HOST  "host"

/* Op names (docs/protocol.md has args and results). Names never change. */
#define PV_OP_PING          "ping"
#define PV_OP_EXEC          "exec"
#define PV_OP_SPAWN         "spawn"
#define PV_OP_PROC_WRITE    "proc_write"      /* stdin of a spawned process */
#define PV_OP_PROC_CLOSE_STDIN "proc_close_stdin"
#define PV_OP_PROC_SIGNAL   "proc_signal"
#define PV_OP_PROC_KILL     "proc_kill"       /* SIGKILL to the process group */
#define PV_OP_PROC_WAIT     "proc_wait"
#define PV_OP_PROC_STATUS   "proc_status"
#define PV_OP_PROC_RESIZE   "proc_resize"     /* window size of a spawn's pty */
#define PV_OP_READ_FILE     "read_file"
#define PV_OP_WRITE_FILE    "write_file"
#define PV_OP_OPEN          "open"
#define PV_OP_READ          "read"
#define PV_OP_WRITE         "write"
#define PV_OP_SEEK          "seek"
#define PV_OP_TELL          "tell"
#define PV_OP_FSYNC         "fsync"
#define PV_OP_CLOSE         "close"
#define PV_OP_STAT          "stat"
#define PV_OP_LS            "ls"
#define PV_OP_MKDIR         "mkdir"
#define PV_OP_RM            "rm"
#define PV_OP_RENAME        "rename"
#define PV_OP_CHMOD         "chmod"
#define PV_OP_TRUNCATE      "truncate"
#define PV_OP_EXISTS        "exists"
#define PV_OP_TAIL          "tail"            /* follow a file by name (tail -F) */
#define PV_OP_TAIL_FD       "tail_fd"         /* stream an agent-held fd */
#define PV_OP_CANCEL        "cancel"          /* stop a tail/tail_fd by request id */
#define PV_OP_SYSCALL       "syscall"
#define PV_OP_CLOCK_GET     "clock_get"
#define PV_OP_CLOCK_SET     "clock_set"
#define PV_OP_SLEEP         "sleep"
#define PV_OP_SETHOSTNAME   "sethostname"
#define PV_OP_UNAME         "uname"
#define PV_OP_POWEROFF      "poweroff"
#define PV_OP_REBOOT        "reboot"

/* Stream names. */
#define PV_STREAM_STDOUT "stdout"
#define PV_STREAM_STDERR "stderr"
#define PV_STREAM_TAIL   "tail"
#define PV_STREAM_DATA   "data"               /* read_file / write_file chunks */

/* Values of the optional `code` field of error replies (absent: a guest errno). */
#define PV_ERRCODE_INVALID  "invalid"         /* bad args, unknown op/syscall name */
#define PV_ERRCODE_PROTOCOL "protocol"        /* malformed frame, version mismatch */
#define PV_ERRCODE_TIMEOUT  "timeout"         /* proc_wait timed out */

/* ---- encoding ---- */

/* A frame being built: an sbuffer whose first 4 bytes become the length. */
struct pv_fbuf {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

void pv_fbuf_init(struct pv_fbuf *b);
/* Empties b for the next frame (keeps its memory). */
void pv_fbuf_reset(struct pv_fbuf *b);
void pv_fbuf_destroy(struct pv_fbuf *b);
/* Writes the length prefix. Returns 0, or -EMSGSIZE when the payload is larger
 * than PV_PROTO_MAX_FRAME. The frame is b->sb.data, b->sb.size bytes. */
int pv_fbuf_finish(struct pv_fbuf *b);

/* Whole frames. features may be NULL when nfeatures is 0. */
void pv_enc_hello(struct pv_fbuf *b, const char *role, const char *const *features,
		  size_t nfeatures);
/* Request header: packs {id, op, args=} — the caller then packs exactly one value,
 * the args map (pv_pack_map(b, 0) for none). */
void pv_enc_request(struct pv_fbuf *b, uint64_t id, const char *op);
/* Success reply header: packs {id, ok=true, result=} — the caller packs the result map. */
void pv_enc_reply_ok(struct pv_fbuf *b, uint64_t id);
/* A whole error reply. code may be NULL (a guest errno). */
void pv_enc_reply_err(struct pv_fbuf *b, uint64_t id, int err, const char *code,
		      const char *message);
void pv_enc_stream(struct pv_fbuf *b, uint64_t id, const char *stream,
		   const void *data, size_t len);
void pv_enc_eof(struct pv_fbuf *b, uint64_t id, const char *stream);

/* Packing helpers for args/result maps (keys are strings). */
void pv_pack_map(struct pv_fbuf *b, uint32_t n);
void pv_pack_array(struct pv_fbuf *b, uint32_t n);
void pv_pack_str(struct pv_fbuf *b, const char *s);
void pv_pack_strn(struct pv_fbuf *b, const char *s, size_t len);
void pv_pack_bin(struct pv_fbuf *b, const void *data, size_t len);
void pv_pack_int(struct pv_fbuf *b, int64_t v);
void pv_pack_uint(struct pv_fbuf *b, uint64_t v);
void pv_pack_bool(struct pv_fbuf *b, bool v);
void pv_pack_nil(struct pv_fbuf *b);
void pv_pack_double(struct pv_fbuf *b, double v);
void pv_pack_kv_str(struct pv_fbuf *b, const char *key, const char *v);
void pv_pack_kv_bin(struct pv_fbuf *b, const char *key, const void *data, size_t len);
void pv_pack_kv_int(struct pv_fbuf *b, const char *key, int64_t v);
void pv_pack_kv_uint(struct pv_fbuf *b, const char *key, uint64_t v);
void pv_pack_kv_bool(struct pv_fbuf *b, const char *key, bool v);

/* ---- decoding ---- */

enum pv_frame_kind {
	PV_FRAME_INVALID = 0, /* a map, but none of the shapes above */
	PV_FRAME_HELLO,
	PV_FRAME_REQUEST,
	PV_FRAME_REPLY,
	PV_FRAME_STREAM,      /* data frame or eof frame (see .eof) */
};

/* One decoded frame. It owns a copy of its payload (`raw`: msgpack-c points str/bin
 * objects into the bytes it decodes) and every pointer lives until
 * pv_frame_destroy. */
struct pv_frame {
	msgpack_unpacked up;
	void *raw;
	const msgpack_object *root;   /* the map */
	enum pv_frame_kind kind;
	bool has_id;
	uint64_t id;
	/* hello */
	char role[16];
	int64_t version;
	const msgpack_object *features;   /* array of str, or NULL */
	/* request */
	char op[32];
	const msgpack_object *args;       /* map, or NULL when absent/nil */
	/* reply */
	bool ok;
	const msgpack_object *result;     /* map (ok), or NULL */
	int err;                          /* errno (not ok) */
	char code[16];                    /* "" or PV_ERRCODE_* */
	const char *message;              /* not NUL-terminated */
	size_t message_len;
	/* stream */
	char stream[16];
	const uint8_t *data;              /* bin or str payload */
	size_t data_len;
	bool eof;
};

void pv_frame_destroy(struct pv_frame *f);

/* Checks that data[0..len) is exactly one msgpack object, nested at most
 * PV_PROTO_MAX_DEPTH deep, with no array or map announcing more elements than
 * bytes remain — without allocating. msgpack-c reserves an announced count before
 * reading the elements, so run this before msgpack_unpack_next on untrusted bytes
 * (frames; snapshot state files). 0, or -EBADMSG with the reason in err. */
int pv_msgpack_check(const void *data, size_t len, char *err, size_t errlen);

/* Incremental frame reader: feed bytes as they arrive, take out complete frames. */
struct pv_frame_reader {
	uint8_t *buf;
	size_t start, len, cap;   /* unread bytes are buf[start .. start+len) */
	size_t max_frame;
	int fatal;                /* sticky -EMSGSIZE once framing is lost */
	char err[160];            /* why the last call failed */
};

/* max_frame 0 means PV_PROTO_MAX_FRAME. */
void pv_frame_reader_init(struct pv_frame_reader *r, size_t max_frame);
void pv_frame_reader_free(struct pv_frame_reader *r);
/* Copies len bytes in. Returns 0 or -ENOMEM. */
int pv_frame_reader_feed(struct pv_frame_reader *r, const void *data, size_t len);
/* Zero-copy feeding: a pointer to at least `want` free bytes (*room gets the real
 * amount), then commit how many were written there. NULL on ENOMEM. */
void *pv_frame_reader_reserve(struct pv_frame_reader *r, size_t want, size_t *room);
void pv_frame_reader_commit(struct pv_frame_reader *r, size_t n);
/* Takes the next complete frame out. Returns 1 and fills *f (pv_frame_destroy it),
 * 0 when more bytes are needed, -EBADMSG when a frame was not a valid msgpack map
 * (it is consumed; the stream stays usable; -ENOMEM likewise), -EMSGSIZE when a length prefix exceeds
 * max_frame (sticky: close the connection). r->err holds a message. */
int pv_frame_reader_next(struct pv_frame_reader *r, struct pv_frame *f);
/* Bytes held but not yet returned as frames. */
size_t pv_frame_reader_pending(const struct pv_frame_reader *r);

/* Decodes one payload (without the length prefix). Returns 0 or -EBADMSG with a
 * message in err. Used by the reader; public for tests and the fuzzer. */
int pv_frame_decode(const void *payload, size_t len, struct pv_frame *f, char *err,
		    size_t errlen);

/* Checks a peer's hello: role must be expected_role and v must equal
 * PROTOCOL_VERSION. Returns 0, or -EPROTO with a message naming both versions
 * ("protocol version mismatch: agent speaks 2, host speaks 1"). */
int pv_hello_check(const struct pv_frame *f, const char *expected_role, char *err,
		   size_t errlen);

/* Map/object accessors (map may be NULL; keys compared exactly). */
const msgpack_object *pv_map_get(const msgpack_object *map, const char *key);
/* True when o is a str equal to s. */
bool pv_obj_streq(const msgpack_object *o, const char *s);
/* Copies a str (or bin) into buf, NUL-terminated. Returns 0, -EINVAL when the type
 * is wrong or it holds a NUL byte, -ENAMETOOLONG when it does not fit. */
int pv_obj_strcpy(const msgpack_object *o, char *buf, size_t size);
/* *out = integer value (positive or negative int; float with no fraction). 0/-EINVAL. */
int pv_obj_int(const msgpack_object *o, int64_t *out);
/* Typed lookups: 0 on success, -ENOENT when absent or nil, -EINVAL on a wrong type. */
int pv_map_int(const msgpack_object *map, const char *key, int64_t *out);
int pv_map_bool(const msgpack_object *map, const char *key, bool *out);
int pv_map_strcpy(const msgpack_object *map, const char *key, char *buf, size_t size);
/* A str or bin value: pointer and length into the frame (not NUL-terminated). */
int pv_map_bytes(const msgpack_object *map, const char *key, const uint8_t **data,
		 size_t *len);
/* Returns a malloc'd NUL-terminated copy of a str/bin value (NULL if absent, wrong
 * type, or holding a NUL byte). */
char *pv_map_strdup(const msgpack_object *map, const char *key);

/* "ENOENT" for ENOENT; "E<n>" for numbers it does not know. */
const char *pv_errno_name(int err);

#endif
