/* test_cmd_boot.c — `provium boot` and `provium doctor` as a person runs them: the
 * built binary (in $PROVIUM_BUILD, else ./build) run in a child process. Exit codes
 * (guest code, bad arguments, unusable /dev/kvm = 3), serial input from a pipe, raw
 * mode on a terminal with Ctrl-A x, doctor's verdict and fix lines, and
 * doctor_linux_guests_ok(). Hiding /dev uses a private mount namespace (root only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/doctor.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char provium[PATH_MAX], guestdir[PATH_MAX];

struct result {
	int status;      /* exit status, or 128+signal */
	char out[16384]; /* stdout + stderr */
};

/* Starts provium with argv, its stdin and stdout pipes we hold (*in_wr, *out_rd);
 * its stderr goes to stdout, or to /dev/null with quiet_err; hide_dev mounts an empty
 * /dev in a private mount namespace first (exit 200 when it cannot). */
static pid_t spawn(const char *const *args, bool hide_dev, bool quiet_err, int *in_wr, int *out_rd)
{
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(quiet_err ? open("/dev/null", O_WRONLY) : out[1], 2);
		close(in[1]);
		close(out[0]);
		if (hide_dev && (unshare(CLONE_NEWNS) < 0 ||
				 mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
				 mount("none", "/dev", "tmpfs", 0, NULL) < 0))
			_exit(200);
		char *argv[16];
		int n = 0;
		argv[n++] = "provium";
		for (; args[n - 1]; n++)
			argv[n] = (char *)args[n - 1];
		argv[n] = NULL;
		execv(provium, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	*in_wr = in[1];
	*out_rd = out[0];
	return pid;
}

/* Runs provium with argv; `input` (may be NULL) is written to its stdin;
 * hide_dev mounts an empty /dev in a private mount namespace first. */
static void run(const char *const *args, const char *input, bool hide_dev, struct result *r)
{
	int in, out;
	pid_t pid = spawn(args, hide_dev, false, &in, &out);
	if (input) {
		ssize_t w = write(in, input, strlen(input));
		(void)w;
	}
	close(in);
	size_t n = 0;
	for (;;) {
		ssize_t k = read(out, r->out + n, sizeof(r->out) - 1 - n);
		if (k <= 0)
			break;
		n += k;
	}
	r->out[n] = 0;
	close(out);
	int st;
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (r->status == 200)
		print_message("# could not hide /dev (needs root)\n");
}

static bool have_guest(const char *name, char *path)
{
	if (snprintf(path, PATH_MAX, "%s/%s.elf", guestdir, name) >= PATH_MAX)
		return false;
	if (access(path, R_OK) == 0 && access("/dev/kvm", W_OK) == 0)
		return true;
	print_message("# %s or a usable /dev/kvm missing: build the test guest (make guest)\n",
		      path);
	return false;
}

static void test_boot_exits_with_guest_code(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("exit", elf))
		skip();
	struct result r;
	const char *args[] = {"boot", "--kernel", elf, "--cmdline", "console=ttyS0 exit=5",
			      "--cpus", "2", "--memory", "32M", NULL};
	run(args, "", false, &r);
	assert_int_equal(r.status, 5);
	assert_non_null(strstr(r.out, "exit: code 5"));
}

static void test_boot_forwards_piped_input(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("serial_echo", elf))
		skip();
	struct result r;
	const char *args[] = {"boot", "--kernel", elf, NULL};
	run(args, "piped line\n", false, &r);
	assert_non_null(strstr(r.out, "ECHO: piped line"));
	assert_int_equal(r.status, 0);
}

/* Starts `provium boot` on the flood test guest with stdin an open pipe (kept
 * open, as a terminal would be) and stdout a pipe we hold; stderr goes to /dev/null. */
static pid_t spawn_flood(const char *elf, int *out_rd, int *in_wr)
{
	const char *args[] = {"boot", "--kernel", elf, "--cmdline", "console=ttyS0",
			      "--memory", "32M", NULL};
	return spawn(args, false, true, in_wr, out_rd);
}

/* The child's exit status within `secs`, or -1 (then it is killed). */
static int wait_within(pid_t pid, int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void test_boot_stops_when_output_closed(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("flood", elf))
		skip();
	int out, in;
	pid_t pid = spawn_flood(elf, &out, &in);
	char buf[4096];
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t k = read(out, buf, sizeof(buf) - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	assert_true(got > 0);
	close(out); /* the reader goes away, as `provium boot | head` */
	int status = wait_within(pid, 20);
	close(in);
	assert_int_equal(status, 141);
}

/* Console output goes out a line at a time, not a write per byte: nearly every read
 * of the flood guest's output ends at a line's end (with a write per byte, about a
 * third did when this test was written). */
static void test_boot_writes_whole_lines(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("flood", elf))
		skip();
	int out, in;
	pid_t pid = spawn_flood(elf, &out, &in);
	int reads = 0, at_eol = 0;
	char buf[65536];
	while (reads < 300) {
		struct pollfd p = {.fd = out, .events = POLLIN};
		if (poll(&p, 1, 20000) <= 0)
			break;
		usleep(1000); /* let a few writes gather in the pipe */
		ssize_t k = read(out, buf, sizeof(buf));
		if (k <= 0)
			break;
		reads++;
		at_eol += buf[k - 1] == '\n';
	}
	close(out);
	int status = wait_within(pid, 20);
	close(in);
	assert_int_equal(status, 141);
	assert_int_equal(reads, 300);
	print_message("# %d of %d reads ended at a newline\n", at_eol, reads);
	assert_true(at_eol >= reads * 3 / 4);
}

/* A line's unfinished tail (a prompt) is shown while the guest waits, before any
 * newline follows it; then the typed line is echoed. */
static void test_boot_shows_a_prompt_without_newline(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("serial_echo", elf))
		skip();
	const char *args[] = {"boot", "--kernel", elf, NULL};
	int in, out;
	pid_t pid = spawn(args, false, true, &in, &out);
	char buf[8192];
	size_t n = 0;
	buf[0] = 0;
	while (!strstr(buf, "line> ")) {
		struct pollfd p = {.fd = out, .events = POLLIN};
		if (poll(&p, 1, 20000) <= 0)
			break;
		ssize_t k = read(out, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = 0;
	}
	bool prompt = strstr(buf, "line> ") != NULL;
	assert_int_equal(write(in, "typed\n", 6), 6);
	close(in);
	for (;;) {
		ssize_t k = read(out, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = 0;
	close(out);
	int status = wait_within(pid, 20);
	assert_true(prompt);
	assert_non_null(strstr(buf, "ECHO: typed"));
	assert_int_equal(status, 0);
}

static void stops_on_signal(int sig)
{
	char elf[PATH_MAX];
	if (!have_guest("flood", elf))
		skip();
	int out, in;
	pid_t pid = spawn_flood(elf, &out, &in);
	/* nobody reads stdout: the pipe fills and the vCPU blocks writing the console */
	usleep(1500 * 1000);
	kill(pid, sig);
	int status = wait_within(pid, 20);
	close(out);
	close(in);
	assert_int_equal(status, 130);
}

static void test_boot_stops_on_sigterm_with_output_blocked(void **state)
{
	(void)state;
	stops_on_signal(SIGTERM);
}

static void test_boot_stops_on_sighup_and_sigint(void **state)
{
	(void)state;
	stops_on_signal(SIGHUP);
	stops_on_signal(SIGINT);
}

static void test_boot_bad_arguments(void **state)
{
	(void)state;
	struct result r;
	const char *none[] = {"boot", NULL};
	run(none, NULL, false, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.out, "--kernel is required"));
	const char *missing[] = {"boot", "--kernel", "/nonexistent/vmlinux", NULL};
	run(missing, NULL, false, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.out, "/nonexistent/vmlinux: No such file"));
	const char *mem[] = {"boot", "--kernel", "/bin/sh", "--memory", "lots", NULL};
	run(mem, NULL, false, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.out, "--memory lots"));
	if (access("/dev/kvm", W_OK) == 0) {
		/* Parses, but the VMM refuses the size: still a bad argument, not 3. */
		const char *small[] = {"boot", "--kernel", "/bin/sh", "--memory", "1", NULL};
		run(small, NULL, false, &r);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.out, "memory 1 MiB: must be between 4 and"));
	}
	if (access("/dev/kvm", W_OK) == 0) {
		char self[PATH_MAX];
		if (snprintf(self, sizeof(self), "%s/../../Makefile", guestdir) >= PATH_MAX)
			fail_msg("path too long");
		const char *bad[] = {"boot", "--kernel", self, NULL};
		run(bad, NULL, false, &r);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.out, "wrong magic"));
	}
}

static void test_boot_without_kvm_exits_3(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("# hiding /dev/kvm needs root\n");
		skip();
	}
	struct result r;
	const char *args[] = {"boot", "--kernel", "/bin/sh", NULL};
	run(args, NULL, true, &r);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.out, "cannot open /dev/kvm"));
	assert_non_null(strstr(r.out, "provium doctor"));
}

static void test_boot_raw_terminal_ctrl_a_x_quits(void **state)
{
	(void)state;
	char elf[PATH_MAX];
	if (!have_guest("serial_echo", elf))
		skip();
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(provium, "provium", "boot", "--kernel", elf, (char *)NULL);
		_exit(127);
	}
	/* Wait for the guest's prompt, then quit with Ctrl-A x. */
	char buf[8192] = "";
	size_t n = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!strstr(buf, "ready for a line")) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		assert_true(poll(&p, 1, 20000) > 0);
		ssize_t k = read(master, buf + n, sizeof(buf) - 1 - n);
		assert_true(k > 0);
		n += k;
		buf[n] = 0;
	}
	bool echoed = strstr(buf, "ECHO:") != NULL;
	assert_int_equal(write(master, "\x01x", 2), 2);
	int st = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		/* Keep draining the pty so the child never blocks on output. */
		struct pollfd p = {.fd = master, .events = POLLIN};
		ssize_t k = poll(&p, 1, 50) > 0 ? read(master, buf, sizeof(buf) - 1) : 0;
		if (k < 0)
			break;
		buf[k] = 0;
		echoed |= strstr(buf, "ECHO:") != NULL;
		if (i == 199) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("provium boot did not quit on Ctrl-A x");
		}
	}
	close(master);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The guest never got a line: Ctrl-A x was not forwarded as input. */
	assert_false(echoed);
}

static void test_doctor_verdict(void **state)
{
	(void)state;
	struct result r;
	const char *args[] = {"doctor", NULL};
	run(args, NULL, false, &r);
	assert_non_null(strstr(r.out, "/dev/kvm"));
	assert_non_null(strstr(r.out, "Backends"));
	/* The architecture comes first: this build's guests, matching the host's. */
	char want[64];
	snprintf(want, sizeof(want), "provium's VMM runs %s guests", vm_arch_name());
	assert_non_null(strstr(r.out, "Architecture\n"));
	assert_non_null(strstr(r.out, want));
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		assert_non_null(strstr(r.out, "PVM"));
		assert_non_null(strstr(r.out, "sandbox backend will be used"));
	}
	/* Exit 0 exactly when it says tests can run. */
	if (strstr(r.out, "Tests can run here"))
		assert_int_equal(r.status, 0);
	else
		assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.out, "network namespace"));
}

static void test_doctor_prints_fix_without_kvm(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("# hiding /dev/kvm needs root\n");
		skip();
	}
	struct result r;
	const char *args[] = {"doctor", NULL};
	run(args, NULL, true, &r);
	assert_non_null(strstr(r.out, "FAIL  /dev/kvm does not exist"));
	assert_non_null(strstr(r.out, "fix: enable virtualization"));
	assert_non_null(strstr(r.out, "FAIL  /dev/net/tun"));
	/* The sandbox backend still works, so the host can run tests. */
	if (strstr(r.out, "ok    sandbox"))
		assert_int_equal(r.status, 0);
}

static void test_doctor_linux_guests_ok(void **state)
{
	(void)state;
	char why[256] = "";
	int ok = doctor_linux_guests_ok(why, sizeof(why));
	assert_true(why[0]);
	bool hw = access("/sys/module/kvm_intel", F_OK) == 0 ||
		  access("/sys/module/kvm_amd", F_OK) == 0;
	if (access("/dev/kvm", W_OK) != 0) {
		assert_int_equal(ok, 0);
	} else if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		assert_int_equal(ok, 0);
		assert_non_null(strstr(why, "PVM"));
	} else {
		assert_int_equal(ok, hw);
	}
}

int main(void)
{
	const char *b = getenv("PROVIUM_BUILD");
	snprintf(provium, sizeof(provium), "%s/provium", b && *b ? b : "build");
	snprintf(guestdir, sizeof(guestdir), "%s/guest", b && *b ? b : "build");
	/* The ASan tree has no provium binary or guests: use the normal build's. */
	if (access(provium, X_OK) != 0) {
		snprintf(provium, sizeof(provium), "build/provium");
		snprintf(guestdir, sizeof(guestdir), "build/guest");
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_exits_with_guest_code),
		cmocka_unit_test(test_boot_forwards_piped_input),
		cmocka_unit_test(test_boot_stops_when_output_closed),
		cmocka_unit_test(test_boot_writes_whole_lines),
		cmocka_unit_test(test_boot_shows_a_prompt_without_newline),
		cmocka_unit_test(test_boot_stops_on_sigterm_with_output_blocked),
		cmocka_unit_test(test_boot_stops_on_sighup_and_sigint),
		cmocka_unit_test(test_boot_bad_arguments),
		cmocka_unit_test(test_boot_without_kvm_exits_3),
		cmocka_unit_test(test_boot_raw_terminal_ctrl_a_x_quits),
		cmocka_unit_test(test_doctor_verdict),
		cmocka_unit_test(test_doctor_prints_fix_without_kvm),
		cmocka_unit_test(test_doctor_linux_guests_ok),
	};
	return cmocka_run_group_tests_name("cmd_boot", tests, NULL, NULL);
}
