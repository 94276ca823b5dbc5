/* report_json.c — JSON lines: every public event as one JSON object per line, with
 * the same fields in the same order as the msgpack stream. */
#include "runner/report.h"

#include <stdlib.h>

static void json_event(struct reporter *r, const msgpack_object *ev)
{
	json_t *j = report_mp_to_json(ev);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	if (s) {
		fprintf(r->cfg.out, "%s\n", s);
		fflush(r->cfg.out);
		free(s);
	}
	json_decref(j);
}

static int json_finish(struct reporter *r)
{
	(void)r;
	return 0;
}

static void json_destroy(struct reporter *r)
{
	free(r);
}

struct reporter *report_json_new(const struct report_cfg *cfg)
{
	struct reporter *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	*r = (struct reporter){.event = json_event, .finish = json_finish,
			       .destroy = json_destroy, .cfg = *cfg};
	return r;
}
