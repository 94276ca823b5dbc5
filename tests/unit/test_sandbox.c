/* test_sandbox.c — the sandbox backend (lua/sandbox.c) with a test rootfs built in a
 * temp dir: busybox-static plus an /init that serves shell commands over the agent
 * socket (fd 3), so namespaces, mounts, console and teardown are checked without the
 * agent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lua/sandbox.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char rootfs[256];

/* /init: one shell command per line on fd 3; its stdout goes back on fd 3 followed by
 * a "--end--" line; stderr stays on the console. */
static const char *init_script =
	"#!/bin/sh\n"
	"echo \"init: console up\"\n"
	"echo \"hello $(hostname) $$ $PROVIUM_SANDBOX $PROVIUM_AGENT_FD\" >&3\n"
	"while read -r cmd <&3; do\n"
	"  eval \"$cmd\" >&3\n"
	"  echo \"--end--\" >&3\n"
	"done\n";

static int group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "# test_sandbox needs root (namespaces, mounts)\n");
		return 0;
	}
	strcpy(rootfs, "/tmp/pv-test-rootfs.XXXXXX");
	if (!mkdtemp(rootfs))
		return -1;
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; mkdir -p bin sbin etc proc sys dev tmp run; "
		 "cp /bin/busybox bin/busybox; "
		 "for a in $(bin/busybox --list); do [ -e bin/$a ] || ln -s busybox bin/$a; done; "
		 "cat > init <<'EOF'\n%sEOF\nchmod 755 init; "
		 "printf '#!/bin/sh\\necho \"worker $(hostname) $PROVIUM_SANDBOX $*\" >&3\\n"
		 "while read -r cmd <&3; do eval \"$cmd\" >&3; echo --end-- >&3; done\\n' > bin/provium-agent; "
		 "chmod 755 bin/provium-agent", rootfs, init_script);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (rootfs[0]) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", rootfs);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

/* Reads from fd until `until` appears or 5 s pass; returns the text before it. */
static char *read_until(int fd, const char *until)
{
	static char buf[65536];
	size_t got = 0;
	uint64_t deadline = pv_now_ns() + 5000000000ull;
	buf[0] = 0;
	while (!strstr(buf, until) && pv_now_ns() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = 0;
	}
	char *e = strstr(buf, until);
	assert_non_null(e);
	*e = 0;
	return buf;
}

/* Runs a shell command in the sandbox's /init and returns its stdout. */
static char *sh(struct sandbox *sb, const char *cmd)
{
	char line[1024];
	snprintf(line, sizeof(line), "%s\n", cmd);
	assert_int_equal(pv_write_full(sandbox_agent_fd(sb), line, strlen(line)), 0);
	return read_until(sandbox_agent_fd(sb), "--end--\n");
}

static struct sandbox *start(const char *name)
{
	struct sandbox_config cfg = {.name = name, .rootfs = rootfs};
	struct sandbox *sb = NULL;
	int r = sandbox_start(&cfg, &sb);
	if (r < 0)
		fail_msg("sandbox_start: %s", pv_errmsg());
	char *hello = read_until(sandbox_agent_fd(sb), "\n");
	char want[128];
	snprintf(want, sizeof(want), "hello %s 1 1 3", name);
	assert_string_equal(hello, want);
	return sb;
}

static void skip_unless_root(void)
{
	if (geteuid() != 0)
		skip();
}

static void test_namespaces_and_root(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *sb = start("web");
	/* own pid namespace: PID 1 is /init, nothing of the host is visible */
	assert_string_equal(sh(sb, "cat /proc/1/cmdline | tr '\\0' ' '"), "/bin/sh /init ");
	int nproc = atoi(sh(sb, "ls -d /proc/[0-9]* | wc -l"));
	assert_true(nproc >= 1 && nproc < 10);
	/* loopback up, no other interface */
	assert_string_equal(sh(sb, "ls /sys/class/net | tr '\\n' ' '"), "lo ");
	assert_non_null(strstr(sh(sb, "cat /sys/class/net/lo/operstate /sys/class/net/lo/flags"),
			       "0x9"));
	/* device nodes work */
	assert_string_equal(sh(sb, "echo x > /dev/null && head -c 4 /dev/zero | wc -c"), "4\n");
	/* private writable root: a write shows up inside only */
	assert_string_equal(sh(sb, "echo data > /etc/marker && cat /etc/marker"), "data\n");
	char p[512];
	snprintf(p, sizeof(p), "%s/etc/marker", rootfs);
	assert_int_equal(access(p, F_OK), -1);
	assert_string_equal(sh(sb, "mount | grep -c ' on /tmp type tmpfs'"), "1\n");
	sandbox_free(sb);
}

static void test_two_sandboxes_are_isolated(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *a = start("a"), *b = start("b");
	sh(a, "echo from-a > /root/f");
	assert_string_equal(sh(b, "cat /root/f 2>/dev/null || echo none"), "none\n");
	assert_string_equal(sh(a, "hostname"), "a\n");
	assert_string_equal(sh(b, "hostname"), "b\n");
	sandbox_free(a);
	sandbox_free(b);
}

static void test_console_ring_and_input(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *sb = start("con");
	/* stderr of a command is the console */
	sh(sb, "echo to-console >&2");
	uint64_t pos = 0;
	char buf[4096];
	uint64_t deadline = pv_now_ns() + 3000000000ull;
	size_t got = 0;
	while (pv_now_ns() < deadline) {
		got += sandbox_console_read(sb, &pos, buf + got, sizeof(buf) - 1 - got);
		buf[got] = 0;
		if (strstr(buf, "to-console\n"))
			break;
		usleep(1000);
	}
	assert_string_equal(buf, "init: console up\nto-console\n");
	/* console input is the init's stdin */
	assert_int_equal(sandbox_console_write(sb, "typed line\n", 11), 11);
	assert_string_equal(sh(sb, "read -r x; echo \"got $x\""), "got typed line\n");
	/* more than the ring holds: the oldest bytes drop, positions keep counting */
	sh(sb, "i=0; while [ $i -lt 1200 ]; do head -c 1024 /dev/zero | tr '\\0' 'a' >&2; i=$((i+1)); done; echo END >&2");
	deadline = pv_now_ns() + 5000000000ull;
	while (sandbox_console_pos(sb) < pos + 1200 * 1024 + 4 && pv_now_ns() < deadline)
		usleep(1000);
	uint64_t total = sandbox_console_pos(sb);
	assert_int_equal(total, pos + 1200 * 1024 + 4);
	uint64_t from = 0;
	char *all = malloc(SANDBOX_CONSOLE_SIZE + 1);
	size_t n = sandbox_console_read(sb, &from, all, SANDBOX_CONSOLE_SIZE + 1);
	assert_int_equal(n, SANDBOX_CONSOLE_SIZE);
	assert_int_equal(from, total);
	assert_memory_equal(all + n - 4, "END\n", 4);
	assert_int_equal(all[0], 'a');
	free(all);
	sandbox_free(sb);
}

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static void test_kill_takes_the_namespace(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *sb = start("k");
	/* a background process inside; find its host pid through the pid namespace */
	sh(sb, "sleep 1000 >/dev/null 2>&1 &");
	pid_t init = sandbox_pid(sb);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "pgrep -P %d sleep", (int)init);
	/* the sleep's parent is the init shell (host pid) */
	FILE *f = popen(cmd, "r");
	int sleeper = 0;
	assert_int_equal(fscanf(f, "%d", &sleeper), 1);
	pclose(f);
	assert_true(pid_alive(sleeper));
	assert_false(sandbox_exited(sb, NULL));
	sandbox_kill(sb);
	int st;
	assert_true(sandbox_exited(sb, &st));
	assert_true(WIFSIGNALED(st));
	assert_false(pid_alive(init));
	assert_false(pid_alive(sleeper));
	assert_int_equal(sandbox_agent_fd(sb), -1);
	/* the console log survives the kill */
	uint64_t pos = 0;
	char buf[64];
	size_t n = sandbox_console_read(sb, &pos, buf, sizeof(buf) - 1);
	buf[n] = 0;
	assert_string_equal(buf, "init: console up\n");
	assert_true(sandbox_console_eof(sb));
	sandbox_kill(sb); /* idempotent */
	sandbox_free(sb);
}

static void test_pause_resume(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *sb = start("p");
	assert_int_equal(sandbox_pause(sb), 0);
	char p[64], st[512];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)sandbox_pid(sb));
	usleep(20000);
	FILE *f = fopen(p, "r");
	assert_non_null(fgets(st, sizeof(st), f));
	fclose(f);
	assert_non_null(strstr(st, ") T "));
	assert_int_equal(sandbox_resume(sb), 0);
	assert_string_equal(sh(sb, "echo alive"), "alive\n");
	sandbox_free(sb);
}

static void test_bad_rootfs_is_a_clear_error(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox_config cfg = {.name = "x", .rootfs = "/nonexistent/rootfs"};
	struct sandbox *sb = NULL;
	assert_int_equal(sandbox_start(&cfg, &sb), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "/nonexistent/rootfs"));
	/* a rootfs with neither /init nor the agent: the exec step is named */
	char empty[] = "/tmp/pv-empty-rootfs.XXXXXX";
	assert_non_null(mkdtemp(empty));
	cfg.rootfs = empty;
	assert_int_equal(sandbox_start(&cfg, &sb), -EIO);
	assert_non_null(strstr(pv_errmsg(), "exec /bin/provium-agent"));
	rmdir(empty);
}

static void test_worker_connection(void **state)
{
	(void)state;
	skip_unless_root();
	struct sandbox *sb = start("wk");
	sh(sb, "echo shared > /tmp/f");
	int fd = sandbox_connect(sb);
	if (fd < 0)
		fail_msg("sandbox_connect: %s", pv_errmsg());
	/* a second agent process, inside the same namespaces and root */
	char *hello = read_until(fd, "\n");
	assert_string_equal(hello, "worker wk 1 --fd 3");
	assert_int_equal(pv_write_full(fd, "cat /tmp/f; hostname\n", 21), 0);
	assert_string_equal(read_until(fd, "--end--\n"), "shared\nwk\n");
	/* it is a process of the sandbox's pid namespace: killing the sandbox ends it */
	assert_int_equal(pv_write_full(fd, "echo $$\n", 8), 0);
	int inner = atoi(read_until(fd, "--end--\n"));
	assert_true(inner > 1);
	sandbox_kill(sb);
	char c;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(read(fd, &c, 1), 0); /* EOF: the worker agent is gone */
	close(fd);
	sandbox_free(sb);
}

static void ns_of(pid_t pid, char *buf, size_t n)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
	ssize_t r = readlink(p, buf, n - 1);
	buf[r > 0 ? r : 0] = 0;
}

static void test_user_namespace(void **state)
{
	(void)state;
	skip_unless_root();
	char host[64], inside[64];
	ns_of(getpid(), host, sizeof(host));
	struct sandbox *sb = start("uns");
	ns_of(sandbox_pid(sb), inside, sizeof(inside));
	if (!sandbox_userns(sb)) {
		sandbox_free(sb);
		fprintf(stderr, "# this host refuses the sandbox a user namespace\n");
		skip();
	}
	assert_string_not_equal(inside, host);
	/* identity maps: root is root for files, and test users exist as themselves */
	assert_string_equal(sh(sb, "cat /proc/self/uid_map | tr -s ' '"), " 0 0 4294967295\n");
	/* capabilities end at the sandbox: the host's clock cannot be set */
	assert_non_null(strstr(sh(sb, "date -s 2001-01-01 2>&1"), "not permitted"));
	sandbox_free(sb);
	/* PROVIUM_SANDBOX_USERNS=0 leaves it out */
	setenv("PROVIUM_SANDBOX_USERNS", "0", 1);
	sb = start("nouns");
	unsetenv("PROVIUM_SANDBOX_USERNS");
	assert_false(sandbox_userns(sb));
	ns_of(sandbox_pid(sb), inside, sizeof(inside));
	assert_string_equal(inside, host);
	sandbox_free(sb);
}

static void test_start_time(void **state)
{
	(void)state;
	skip_unless_root();
	/* not a benchmark (tests/bench/bench_sandbox.sh is): a generous sanity bound */
	uint64_t t0 = pv_now_ns();
	struct sandbox *sb = start("fast");
	uint64_t dt = pv_now_ns() - t0;
	printf("# sandbox start to first agent-socket byte: %.1f ms\n", dt / 1e6);
	assert_true(dt < 2000000000ull);
	sandbox_free(sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespaces_and_root),
		cmocka_unit_test(test_two_sandboxes_are_isolated),
		cmocka_unit_test(test_console_ring_and_input),
		cmocka_unit_test(test_kill_takes_the_namespace),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_bad_rootfs_is_a_clear_error),
		cmocka_unit_test(test_worker_connection),
		cmocka_unit_test(test_user_namespace),
		cmocka_unit_test(test_start_time),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
