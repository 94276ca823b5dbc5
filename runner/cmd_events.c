/* cmd_events.c — `provium events FILE`: pretty-prints a recorded msgpack event
 * stream, one line per event ("#seq +elapsed kind key=value ..."), or with
 * `--format json` one JSON object per line. Unknown kinds and fields are printed
 * like any other (readers must ignore what they do not know; RUNNER.md). Anything
 * that is not a sequence of event maps (maps with a string "ev") exits 1 naming the
 * byte offset of the first bad item. `provium events merge` is
 * runner/cmd_events_merge.c. */
#include "runner/commands.h"
#include "runner/events.h"
#include "runner/report.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_value(FILE *f, const msgpack_object *v)
{
	if (v->type == MSGPACK_OBJECT_STR) {
		const char *p = v->via.str.ptr;
		uint32_t n = v->via.str.size;
		bool plain = n > 0;
		for (uint32_t i = 0; i < n && plain; i++)
			plain = p[i] > ' ' && p[i] != '"' && p[i] != '=' && p[i] != 0x7f;
		if (plain) {
			fwrite(p, 1, n, f);
			return;
		}
	}
	json_t *j = report_mp_to_json(v);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	fputs(s ? s : "?", f);
	free(s);
	json_decref(j);
}

/* true when o is an event: a map whose "ev" is a string; else why says what it is */
static bool event_map(const msgpack_object *o, char *why, size_t size)
{
	static const char *const kinds[] = {
		[MSGPACK_OBJECT_NIL] = "nil", [MSGPACK_OBJECT_BOOLEAN] = "a boolean",
		[MSGPACK_OBJECT_POSITIVE_INTEGER] = "an integer",
		[MSGPACK_OBJECT_NEGATIVE_INTEGER] = "an integer",
		[MSGPACK_OBJECT_FLOAT32] = "a float", [MSGPACK_OBJECT_FLOAT64] = "a float",
		[MSGPACK_OBJECT_STR] = "a string", [MSGPACK_OBJECT_ARRAY] = "an array",
		[MSGPACK_OBJECT_MAP] = "a map", [MSGPACK_OBJECT_BIN] = "binary data",
		[MSGPACK_OBJECT_EXT] = "an extension value",
	};
	if (o->type != MSGPACK_OBJECT_MAP) {
		const char *k = (size_t)o->type < PV_ARRAY_SIZE(kinds) ? kinds[o->type] : NULL;
		snprintf(why, size, "%s, not a map", k ? k : "not a map");
		return false;
	}
	const msgpack_object *ev = ev_get(o, "ev");
	if (!ev || ev->type != MSGPACK_OBJECT_STR) {
		snprintf(why, size, "a map without a string 'ev'");
		return false;
	}
	return true;
}

static void print_line(FILE *f, const msgpack_object *ev, uint64_t t0)
{
	char kind[64];
	int64_t seq = ev_int(ev, "seq", -1), t = ev_int(ev, "t", 0);
	double rel = t0 && t >= (int64_t)t0 ? (double)(t - (int64_t)t0) / 1e9 : 0;
	fprintf(f, "#%-4lld +%9.6fs %-10s", (long long)seq, rel, ev_kind(ev, kind, sizeof(kind)));
	for (uint32_t i = 0; i < ev->via.map.size; i++) {
		const msgpack_object *k = &ev->via.map.ptr[i].key;
		if (ev_is_str(k, "v") || ev_is_str(k, "seq") || ev_is_str(k, "t") || ev_is_str(k, "ev"))
			continue;
		fputc(' ', f);
		if (k->type == MSGPACK_OBJECT_STR)
			fwrite(k->via.str.ptr, 1, k->via.str.size, f);
		else
			print_value(f, k);
		fputc('=', f);
		print_value(f, &ev->via.map.ptr[i].val);
	}
	fputc('\n', f);
}

int cmd_events(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false;
	if (argc > 1 && !strcmp(argv[1], "merge"))
		return cmd_events_merge(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: provium events [--format pretty|json] FILE|-\n"
			       "       provium events merge [-o FILE] [--junit FILE] [--format F] SHARD.mp...\n"
			       "(`provium events merge --help` for merging the streams of sharded runs)\n");
			return 0;
		} else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "json"))
				json = true;
			else if (strcmp(argv[i], "pretty")) {
				fprintf(stderr, "provium events: --format: '%s' is not pretty or json\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!path && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
			path = argv[i];
		} else {
			fprintf(stderr, "provium events: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: provium events [--format pretty|json] FILE|-\n");
		return 2;
	}
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		fprintf(stderr, "provium events: %s: %s\n", path, strerror(errno));
		return 2;
	}
	msgpack_unpacker up;
	msgpack_unpacked u;
	if (!msgpack_unpacker_init(&up, 64 * 1024)) {
		fprintf(stderr, "provium events: out of memory\n");
		return 3;
	}
	msgpack_unpacked_init(&u);
	int code = 0;
	uint64_t t0 = 0, n = 0;
	size_t at = 0, fed = 0; /* byte offset of the item being decoded; bytes read */
	for (bool eof = false; !eof && !code;) {
		if (!msgpack_unpacker_reserve_buffer(&up, 64 * 1024)) {
			code = 3;
			break;
		}
		ssize_t got = read(fd, msgpack_unpacker_buffer(&up), msgpack_unpacker_buffer_capacity(&up));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			fprintf(stderr, "provium events: %s: %s\n", path, strerror(errno));
			code = 1;
			break;
		}
		eof = got == 0;
		msgpack_unpacker_buffer_consumed(&up, (size_t)got);
		fed += (size_t)got;
		msgpack_unpack_return ret;
		while ((ret = msgpack_unpacker_next(&up, &u)) == MSGPACK_UNPACK_SUCCESS) {
			char why[96];
			if (!event_map(&u.data, why, sizeof(why))) {
				fprintf(stderr, "provium events: %s: not an event stream: item %llu at byte "
					"offset %zu is %s (every item must be an event map with a string "
					"'ev')\n", path, (unsigned long long)n + 1, at, why);
				code = 1;
				break;
			}
			at = fed - (up.used - up.off); /* the next item starts after what was taken */
			if (!t0)
				t0 = (uint64_t)ev_int(&u.data, "t", 0);
			n++;
			if (json) {
				json_t *j = report_mp_to_json(&u.data);
				char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
				printf("%s\n", s ? s : "null");
				free(s);
				json_decref(j);
			} else {
				print_line(stdout, &u.data, t0);
			}
		}
		if (code)
			break;
		if (ret == MSGPACK_UNPACK_PARSE_ERROR) {
			fprintf(stderr, "provium events: %s: not msgpack at byte offset %zu (after %llu "
				"events)\n", path, at, (unsigned long long)n);
			code = 1;
			break;
		}
		if (eof && msgpack_unpacker_message_size(&up) > 0) {
			fprintf(stderr, "provium events: %s: truncated last event at byte offset %zu "
				"(after %llu events)\n", path, at, (unsigned long long)n);
			code = 1;
		}
	}
	msgpack_unpacked_destroy(&u);
	msgpack_unpacker_destroy(&up);
	if (fd > 0)
		close(fd);
	return code;
}
