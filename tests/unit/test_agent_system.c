/* test_agent_system.c — build/provium-agent where the system matters: sethostname and
 * mount inside new UTS/mount namespaces, reboot(2) ending a PID namespace, EACCES and
 * EPERM for an agent running as uid 65534, poweroff/reboot exit statuses, the --fd
 * agent exiting with its connection, the vsock listener and usage errors, and a
 * stress run of many connections doing mixed work at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <linux/vm_sockets.h>

#include "tests/unit/agent_client.h"

static char dir[] = "/tmp/provium-agent-system.XXXXXX";
static char sock_path[256];
static pid_t unix_agent;

static char *path(const char *name)
{
	return ac_path_in(dir, name);
}

/* ---- in namespaces / as another user ---- */

static void test_namespaced_hostname_and_mount(void **state)
{
	struct ac a;
	struct ac_rep r;
	const char *h[] = { "ns-host", NULL };
	char mnt[600], src[] = "none";

	(void)state;
	if (getuid() != 0)
		skip();
	assert_int_equal(ac_start(&a, &(struct ac_opts){ .unshare_flags = CLONE_NEWUTS |
										   CLONE_NEWNS }), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SETHOSTNAME, "name=s", "agent-test"), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_UNAME, ""), 0);
	assert_true(pv_obj_streq(ac_res(&r, "nodename"), "agent-test"));
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "sethostname", h), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s", "hostname"), 0);
	char *out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "ns-host\n");
	free(out);
	ac_rep_free(&r);

	snprintf(mnt, sizeof(mnt), "%s", path("mnt"));
	mkdir(mnt, 0755);
	const char *margs[] = { src, mnt, "tmpfs", "nosuid,nodev", "size=1m", NULL };
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "mount", margs), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	snprintf(mnt + strlen(mnt), sizeof(mnt) - strlen(mnt), "%s", "/inside");
	assert_int_equal(ac_callf(&a, &r, PV_OP_WRITE_FILE, "path=s data=s", mnt, "x"), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(access(mnt, F_OK), -1); /* not visible outside the namespace */
	const char *uargs[] = { path("mnt"), NULL };
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "umount", uargs), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "umount", uargs), 0);
	ac_assert_err(&r, EINVAL, NULL);
	ac_rep_free(&r);
	const char *bad[] = { src, path("nope"), "tmpfs", NULL };
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "mount", bad), 0);
	ac_assert_err(&r, ENOENT, NULL);
	ac_rep_free(&r);
	ac_stop(&a);
}

static void test_reboot_in_pid_namespace_ends_it(void **state)
{
	struct ac a;
	struct ac_rep r;
	const char *cmd[] = { "poweroff", NULL };
	int st;

	(void)state;
	if (getuid() != 0)
		skip();
	assert_int_equal(ac_start(&a, &(struct ac_opts){ .unshare_flags = CLONE_NEWPID }), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s", "getpid"), 0);
	assert_int_equal(ac_res_int(&r, "ret"), 1);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "reboot", cmd), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	st = ac_stop(&a);
	/* the namespace's init ended (reboot(2) in a PID namespace kills it with
	 * SIGINT for poweroff); our mirror exits 128+SIGINT */
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGINT);
}

/* Starts an agent (o), sends op (no arguments), which must succeed, and checks
 * the agent then exits with status want. */
static void op_ends_agent_with(const struct ac_opts *o, const char *op, int want)
{
	struct ac a;
	struct ac_rep r;
	int st;

	assert_int_equal(ac_start(&a, o), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_callf(&a, &r, op, ""), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	st = ac_stop(&a);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), want);
}

/* The sandbox case: the agent is PID 1 of its namespaces; poweroff is a clean exit. */
static void test_poweroff_as_namespace_init_exits_cleanly(void **state)
{
	(void)state;
	if (getuid() != 0)
		skip();
	op_ends_agent_with(&(struct ac_opts){ .unshare_flags = CLONE_NEWPID }, PV_OP_POWEROFF,
			   PV_AGENT_EXIT_POWEROFF);
}

static void test_eacces_as_unprivileged_agent(void **state)
{
	struct ac a;
	struct ac_rep r;

	(void)state;
	if (getuid() != 0)
		skip();
	ac_write_host(path("secret"), "root only");
	chmod(path("secret"), 0600);
	chmod(dir, 0755);
	assert_int_equal(ac_start(&a, &(struct ac_opts){ .set_uid = true, .uid = 65534 }), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_READ_FILE, "path=s", path("secret")), 0);
	ac_assert_err(&r, EACCES, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_WRITE_FILE, "path=s data=s", path("nobody"), "x"), 0);
	ac_assert_err(&r, EACCES, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_SETHOSTNAME, "name=s", "nope"), 0);
	ac_assert_err(&r, EPERM, NULL);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_CLOCK_SET, "ns=I", 1LL), 0);
	ac_assert_err(&r, EPERM, NULL);
	ac_rep_free(&r);
	ac_stop(&a);
	unlink(path("secret"));
}

/* ---- poweroff / reboot ---- */

static void test_poweroff_and_reboot_exit_when_not_pid1(void **state)
{
	(void)state;
	op_ends_agent_with(NULL, PV_OP_POWEROFF, PV_AGENT_EXIT_POWEROFF);
	op_ends_agent_with(NULL, PV_OP_REBOOT, PV_AGENT_EXIT_REBOOT);
}

static void test_fd_agent_exits_when_connection_closes(void **state)
{
	struct ac a;
	struct ac_rep s = { 0 };
	int st;
	int64_t pid;

	(void)state;
	assert_int_equal(ac_start(&a, NULL), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_wait(&a, ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 100"), &s, 5000), 0);
	pid = ac_res_int(&s, "pid");
	ac_rep_free(&s);
	st = ac_stop(&a);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	for (int i = 0; i < 300 && kill((pid_t)pid, 0) == 0; i++)
		usleep(10000);
	assert_int_equal(kill((pid_t)pid, 0), -1);
}

/* --vsock binds and listens; a full round trip needs vsock loopback (a guest or the
 * vsock_loopback module), which these hosts lack: then only the listener is checked. */
static void test_vsock_listener_and_usage(void **state)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_LOCAL,
				  .svm_port = 20000 + (unsigned)(getpid() % 20000) };
	char port[16];
	pid_t pid;
	int st, fd;

	(void)state;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "# no AF_VSOCK on this host: %s\n", strerror(errno));
		skip();
	}
	snprintf(port, sizeof(port), "%u", sa.svm_port);
	pid = fork();
	if (pid == 0) {
		execl(ac_agent_path(), ac_agent_path(), "--vsock", port, (char *)NULL);
		_exit(127);
	}
	usleep(300000);
	assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still listening */
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		struct ac a;
		struct ac_rep r;

		ac_init(&a, fd, 0);
		assert_int_equal(ac_hello(&a), 0);
		assert_int_equal(ac_callf(&a, &r, PV_OP_PING, ""), 0);
		assert_true(r.f->ok);
		ac_rep_free(&r);
		ac_close(&a);
	} else {
		fprintf(stderr, "# vsock loopback unavailable (%s): checked the listener only\n",
			strerror(errno));
		close(fd);
	}
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* bad usage is exit status 2 */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(ac_agent_path(), ac_agent_path(), "--unix", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

/* The initramfs has nothing but busybox, /etc/passwd and the agent (and /dev only
 * once /init mounted it): the static agent must work there. */
static void test_runs_in_a_busybox_only_root(void **state)
{
	static const char *const applets[] = { "sh", "echo", "id", "ls", "cat", "sleep" };
	char root[600], p[700], cmd[8192];
	struct ac a;
	struct ac_rep r;
	char *out;

	(void)state;
	if (getuid() != 0 || access("/bin/busybox", X_OK) < 0)
		skip();
	snprintf(root, sizeof(root), "%s", path("root"));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/bin %s/etc %s/tmp && cp /bin/busybox %s/bin/ && "
		 "cp %s %s/bin/provium-agent", root, root, root, root, ac_agent_path(), root);
	assert_int_equal(system(cmd), 0);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		snprintf(p, sizeof(p), "%s/bin/%s", root, applets[i]);
		assert_int_equal(symlink("busybox", p), 0);
	}
	snprintf(p, sizeof(p), "%s/etc/passwd", root);
	ac_write_host(p, "root:x:0:0:root:/root:/bin/sh\nguest:x:1000:1000::/home/guest:/bin/sh\n");

	assert_int_equal(ac_start(&a, &(struct ac_opts){ .chroot_dir = root }), 0);
	assert_int_equal(ac_hello(&a), 0);
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s user=s", "id -u; echo $HOME; ls /",
				  "guest"), 0);
	assert_true(r.f->ok);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "1000\n/home/guest\nbin\netc\ntmp\n");
	free(out);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_READ_FILE, "path=s", "/etc/passwd"), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_stop(&a), 0);
}

/* ---- plain shell commands run without the shell ---- */

/* The stdout of `cmd` run through the agent (cwd when not NULL); the test fails on
 * an error reply. */
static char *run_sh(struct ac *a, const char *cmd, const char *cwd)
{
	struct ac_rep r;
	char *out;

	if (cwd)
		assert_int_equal(ac_callf(a, &r, PV_OP_EXEC, "cmd=s cwd=s", cmd, cwd), 0);
	else
		assert_int_equal(ac_callf(a, &r, PV_OP_EXEC, "cmd=s", cmd), 0);
	assert_true(r.f->ok);
	assert_int_equal(ac_res_int(&r, "code"), 0);
	out = ac_res_str(&r, "stdout");
	ac_rep_free(&r);
	return out;
}

static bool host_file_has(const char *p, const char *s)
{
	char buf[4096] = "";
	FILE *f = fopen(p, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, s) != NULL;
}

/* /bin/sh is replaced, inside the agent's own mount namespace, by a shell that
 * records each start: a plain command (one program and its words) must not start
 * it, so no signal sent right after the spawn can land in the shell's ignore of
 * SIGQUIT; anything else, and a script only a shell runs, still goes through it. */
static void test_plain_shell_command_runs_without_a_shell(void **state)
{
	char fake[600], log[600], script[600], sub[600], body[1200], quoted[1300];
	struct ac a;
	struct ac_rep r;
	char *out;

	(void)state;
	if (getuid() != 0 || access("/bin/bash", X_OK) < 0)
		skip();
	snprintf(fake, sizeof(fake), "%s", path("fake-sh"));
	snprintf(log, sizeof(log), "%s", path("sh-starts"));
	snprintf(script, sizeof(script), "%s", path("no-shebang"));
	snprintf(sub, sizeof(sub), "%s", path("sub"));
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(body, sizeof(body), "#!/bin/bash\necho \"sh $*\" >> %s\nexec /bin/bash \"$@\"\n",
		 log);
	ac_write_host(fake, body);
	assert_int_equal(chmod(fake, 0755), 0);
	ac_write_host(script, "echo from-a-script-without-shebang\n");
	assert_int_equal(chmod(script, 0755), 0);

	assert_int_equal(ac_start(&a, &(struct ac_opts){ .unshare_flags = CLONE_NEWNS }), 0);
	assert_int_equal(ac_hello(&a), 0);
	const char *margs[] = { fake, "/bin/sh", "", "bind", NULL };
	assert_int_equal(ac_callf(&a, &r, PV_OP_SYSCALL, "name=s args=a", "mount", margs), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);

	/* the control: a list still goes through the (fake) shell */
	out = run_sh(&a, "printf '%s\\n' listed; true", NULL);
	assert_string_equal(out, "listed\n");
	free(out);
	assert_true(host_file_has(log, "sh -c printf"));

	/* plain commands: words split as the shell would, PWD as it would export it */
	out = run_sh(&a, "  /usr/bin/printf  %s:  one\ttwo  ", NULL);
	assert_string_equal(out, "one:two:");
	free(out);
	out = run_sh(&a, "printenv PWD", sub);
	snprintf(body, sizeof(body), "%s\n", sub);
	assert_string_equal(out, body);
	free(out);
	uint64_t id = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "sleep 30");
	assert_int_equal(ac_wait(&a, id, &r, 10000), 0);
	assert_true(r.f->ok);
	int64_t pid = ac_res_int(&r, "pid");
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_SIGNAL, "pid=I signal=s", (long long)pid,
				  "QUIT"), 0);
	assert_true(r.f->ok);
	ac_rep_free(&r);
	assert_int_equal(ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I", (long long)pid), 0);
	assert_true(r.f->ok);
	assert_int_equal(ac_res_int(&r, "signal"), SIGQUIT);
	ac_rep_free(&r);
	assert_false(host_file_has(log, "usr/bin/printf"));
	assert_false(host_file_has(log, "printenv"));
	assert_false(host_file_has(log, "sleep"));

	/* a program the kernel cannot exec is run by the shell, as before */
	out = run_sh(&a, script, NULL);
	assert_string_equal(out, "from-a-script-without-shebang\n");
	free(out);
	snprintf(quoted, sizeof(quoted), "sh -c exec %s", script);
	assert_true(host_file_has(log, quoted));

	/* so is one whose exec fails otherwise: a directory first on PATH has the name,
	 * and the shell, which skips directories, finds the program further on */
	snprintf(body, sizeof(body), "%s/printenv", sub);
	assert_int_equal(mkdir(body, 0755), 0);
	snprintf(body, sizeof(body), "%s:/usr/bin:/bin", sub);
	const char *env[] = { "PATH", body, "MARK", "found-on-path", NULL };
	assert_int_equal(ac_callf(&a, &r, PV_OP_EXEC, "cmd=s env=m", "printenv MARK", env), 0);
	assert_true(r.f->ok);
	assert_int_equal(ac_res_int(&r, "code"), 0);
	out = ac_res_str(&r, "stdout");
	assert_string_equal(out, "found-on-path\n");
	free(out);
	ac_rep_free(&r);
	assert_true(host_file_has(log, "sh -c exec printenv MARK"));
	ac_stop(&a);
}

/* ---- many connections at once ---- */

struct worker {
	int n;
	int failures;
	char why[200];
};

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	struct ac a;

	if (ac_connect_unix(&a, sock_path) < 0 || ac_hello(&a) < 0) {
		snprintf(w->why, sizeof(w->why), "connect");
		w->failures++;
		return NULL;
	}
	for (int k = 0; k < 20 && !w->failures; k++) {
		char cmd[64], want[64], file[600], data[64];
		struct ac_rep r = { 0 }, s = { 0 };
		uint64_t id;
		char *out;

		snprintf(cmd, sizeof(cmd), "echo %d-%d", w->n, k);
		snprintf(want, sizeof(want), "%d-%d\n", w->n, k);
		if (ac_callf(&a, &r, PV_OP_EXEC, "cmd=s", cmd) < 0 || !r.f->ok) {
			snprintf(w->why, sizeof(w->why), "exec %s", cmd);
			w->failures++;
		} else if (strcmp((out = ac_res_str(&r, "stdout")), want) != 0) {
			snprintf(w->why, sizeof(w->why), "exec %s gave %s", cmd, out);
			w->failures++;
			free(out);
		} else {
			free(out);
		}
		ac_rep_free(&r);

		id = ac_sendf(&a, PV_OP_SPAWN, "cmd=s", "printf x; exit 3");
		if (ac_wait(&a, id, &s, 10000) < 0 || !s.f->ok ||
		    ac_collect(&a, id, &s, true, false, 10000) < 0 || s.out.len != 1) {
			snprintf(w->why, sizeof(w->why), "spawn output");
			w->failures++;
		} else if (ac_callf(&a, &r, PV_OP_PROC_WAIT, "pid=I",
				    (long long)ac_res_int(&s, "pid")) < 0 ||
			   ac_res_int(&r, "code") != 3) {
			snprintf(w->why, sizeof(w->why), "proc_wait code");
			w->failures++;
		}
		ac_rep_free(&r);
		ac_rep_free(&s);

		/* Not path(): its rotating static buffers are shared between these threads. */
		snprintf(file, sizeof(file), "%s/stress-%d", dir, w->n);
		snprintf(data, sizeof(data), "data %d %d", w->n, k);
		if (ac_callf(&a, &r, PV_OP_WRITE_FILE, "path=s data=s", file, data) < 0 || !r.f->ok) {
			snprintf(w->why, sizeof(w->why), "write_file");
			w->failures++;
		}
		ac_rep_free(&r);
		if (ac_callf(&a, &r, PV_OP_READ_FILE, "path=s", file) < 0 || !r.f->ok ||
		    strcmp((out = ac_res_str(&r, "data")), data) != 0) {
			snprintf(w->why, sizeof(w->why), "read_file");
			w->failures++;
		} else {
			free(out);
		}
		ac_rep_free(&r);
	}
	ac_close(&a);
	return NULL;
}

static void test_many_connections_mixed_work(void **state)
{
	struct worker w[8];
	pthread_t th[8];

	(void)state;
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .n = i };
		assert_int_equal(pthread_create(&th[i], NULL, stress_worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures)
			fail_msg("worker %d: %s", i, w[i].why);
	}
	assert_int_equal(waitpid(unix_agent, NULL, WNOHANG), 0);
}

static int group_setup(void **state)
{
	(void)state;
	if (access(ac_agent_path(), X_OK) < 0 || !mkdtemp(dir))
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", dir);
	unix_agent = ac_spawn_unix(sock_path);
	return unix_agent > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	ac_kill_unix(unix_agent);
	return ac_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespaced_hostname_and_mount),
		cmocka_unit_test(test_reboot_in_pid_namespace_ends_it),
		cmocka_unit_test(test_poweroff_as_namespace_init_exits_cleanly),
		cmocka_unit_test(test_eacces_as_unprivileged_agent),
		cmocka_unit_test(test_poweroff_and_reboot_exit_when_not_pid1),
		cmocka_unit_test(test_fd_agent_exits_when_connection_closes),
		cmocka_unit_test(test_vsock_listener_and_usage),
		cmocka_unit_test(test_runs_in_a_busybox_only_root),
		cmocka_unit_test(test_plain_shell_command_runs_without_a_shell),
		cmocka_unit_test(test_many_connections_mixed_work),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
