/* clock.c — the small system ops: ping, sleep, uname, sethostname, the clocks
 * (read realtime/monotonic/boottime, set realtime) and poweroff/reboot. */
#include "agent/agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int op_ping(struct req *r)
{
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_bool(&r->fb, "pong", true);
	return reply_send(r);
}

/* The "ns" argument (not negative) as a timespec. 0, or the error reply's rc. */
static int arg_ns(struct req *r, struct timespec *ts)
{
	int64_t ns;
	int rc;

	if ((rc = arg_int(r, "ns", &ns)) < 0)
		return rc;
	if (ns < 0)
		return invalid(r, "ns must not be negative");
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	return 0;
}

int op_sleep(struct req *r)
{
	struct timespec ts;
	int rc;

	if ((rc = arg_ns(r, &ts)) < 0)
		return rc;
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
	return reply_empty(r);
}

int op_uname(struct req *r)
{
	struct utsname u;
	struct pv_fbuf *b;
	bool syscall = !strcmp(r->frame.op, PV_OP_SYSCALL);

	if (uname(&u) < 0)
		return fail(r, errno, "uname: %s", strerror(errno));
	b = reply_ok(r);
	/* As the uname syscall the table is the `ret` value. */
	if (syscall) {
		pv_pack_map(b, 1);
		pv_pack_str(b, "ret");
	}
	pv_pack_map(b, 6);
	pv_pack_kv_str(b, "sysname", u.sysname);
	pv_pack_kv_str(b, "nodename", u.nodename);
	pv_pack_kv_str(b, "release", u.release);
	pv_pack_kv_str(b, "version", u.version);
	pv_pack_kv_str(b, "machine", u.machine);
	pv_pack_kv_str(b, "domainname", u.domainname);
	return reply_send(r);
}

int op_sethostname(struct req *r)
{
	char name[256];
	int rc;

	if ((rc = arg_str(r, "name", name, sizeof(name))) < 0)
		return rc;
	if (sethostname(name, strlen(name)) < 0)
		return fail(r, errno, "sethostname %s: %s", name, strerror(errno));
	return reply_empty(r);
}

static int clock_id(struct req *r, clockid_t *id)
{
	char name[16] = "realtime";
	int rc = pv_map_strcpy(r->args, "clock", name, sizeof(name));

	if (rc < 0 && rc != -ENOENT)
		return invalid(r, "clock must be realtime, monotonic or boottime");
	if (!strcmp(name, "realtime"))
		*id = CLOCK_REALTIME;
	else if (!strcmp(name, "monotonic"))
		*id = CLOCK_MONOTONIC;
	else if (!strcmp(name, "boottime"))
		*id = CLOCK_BOOTTIME;
	else
		return invalid(r, "clock must be realtime, monotonic or boottime");
	return 0;
}

int op_clock_get(struct req *r)
{
	struct timespec ts;
	clockid_t id = CLOCK_REALTIME;
	int rc;

	if ((rc = clock_id(r, &id)) < 0)
		return rc;
	clock_gettime(id, &ts);
	pv_pack_map(reply_ok(r), 1);
	pv_pack_kv_int(&r->fb, "ns", (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return reply_send(r);
}

int op_clock_set(struct req *r)
{
	struct timespec ts;
	int rc;

	if ((rc = arg_ns(r, &ts)) < 0)
		return rc;
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		return fail(r, errno, "clock_settime: %s", strerror(errno));
	return reply_empty(r);
}

int do_poweroff(struct req *r, bool restart)
{
	reply_empty(r);
	sync();
	if (agent_allow_reboot) {
		/* The guest: /init started us to power the VM off. */
		reboot(restart ? RB_AUTOBOOT : RB_POWER_OFF);
		fprintf(stderr, "provium-agent: reboot: %s\n", strerror(errno));
	}
	/* Otherwise a clean exit: a supervising /init acts on the status, and as PID 1
	 * of the sandbox's namespaces the exit ends the namespace with status 0/64. */
	agent_exit(restart ? PV_AGENT_EXIT_REBOOT : PV_AGENT_EXIT_POWEROFF);
}

int op_poweroff(struct req *r)
{
	return do_poweroff(r, false);
}

int op_reboot(struct req *r)
{
	return do_poweroff(r, true);
}
