/* cmd_kept.c — the kept-VM commands (`provium run --keep` leaves the VMs of a failed
 * file running; runner/kept.h is their registry): `provium ps` lists them, `provium
 * shell NAME` opens a shell in one (runner/shell.c), `provium console NAME` shows its
 * console live, `provium kill NAME...|--all` stops them. docs/debugging.md. */
#include "runner/commands.h"
#include "runner/kept.h"
#include "runner/shell.h"

#include "lua/sandbox.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

static void age(double since, char *buf, size_t n)
{
	long s = since > 0 ? (long)(time(NULL) - (time_t)since) : 0;

	if (s < 120)
		snprintf(buf, n, "%lds", s);
	else if (s < 7200)
		snprintf(buf, n, "%ldm", s / 60);
	else
		snprintf(buf, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
}

int cmd_ps(int argc, char **argv)
{
	struct pv_kept *v;
	size_t n;
	char dir[PATH_MAX];

	if (wants_help(argc, argv) || argc > 1) {
		fprintf(argc > 1 && !wants_help(argc, argv) ? stderr : stdout,
			"usage: provium ps\n"
			"Lists the VMs `provium run --keep` left running after a failed test: name,\n"
			"backend, pid, how long ago, the test file. Reach one with `provium shell\n"
			"NAME`, `provium console NAME`; stop it with `provium kill NAME`.\n");
		return wants_help(argc, argv) ? 0 : 2;
	}
	if (pv_kept_list(&v, &n) < 0) {
		fprintf(stderr, "provium ps: %s\n", pv_errmsg());
		return 3;
	}
	if (!n) {
		printf("no kept VMs (in %s)\n", pv_kept_dir(dir, sizeof(dir), false) ? dir : "?");
		return 0;
	}
	printf("%-20s %-8s %-8s %-6s %s\n", "NAME", "BACKEND", "PID", "AGE", "FILE");
	for (size_t i = 0; i < n; i++) {
		char a[32];

		age(v[i].since, a, sizeof(a));
		printf("%-20s %-8s %-8d %-6s %s\n", v[i].name, v[i].backend, (int)v[i].pid, a,
		       v[i].file);
	}
	free(v);
	return 0;
}

/* NAME or PID to a kept VM, saying why not on stderr. */
static int find(const char *cmd, const char *spec, struct pv_kept *k)
{
	if (pv_kept_find(spec, k) == 0)
		return 0;
	fprintf(stderr, "provium %s: %s\n", cmd, pv_errmsg());
	return -1;
}

int cmd_shell(int argc, char **argv)
{
	struct pv_kept k;

	if (wants_help(argc, argv) || argc != 2) {
		fprintf(argc != 2 && !wants_help(argc, argv) ? stderr : stdout,
			"usage: provium shell NAME|PID\n"
			"An interactive shell in a kept VM (`provium ps`) on this terminal: /bin/sh\n"
			"on a pty in the guest, window size changes passed on; Ctrl-] leaves it.\n"
			"With stdin not a terminal, the shell reads it and ends at its end. The exit\n"
			"status is the shell's (0 after Ctrl-]).\n");
		return wants_help(argc, argv) ? 0 : 2;
	}
	if (find("shell", argv[1], &k) < 0)
		return 2;
	/* a sandbox: into its namespaces; a kvm VM: a new vsock stream from its holder */
	int fd = !strcmp(k.backend, "kvm") ? pv_kept_ask(&k, PV_KEPT_SHELL)
					    : sandbox_connect_pid(k.pid, k.userns, k.name);
	if (fd < 0) {
		if (!strcmp(k.backend, "kvm")) /* its message names the VM */
			fprintf(stderr, "provium shell: %s\n", pv_errmsg());
		else
			fprintf(stderr, "provium shell: VM %s: %s\n", k.name, pv_errmsg());
		return 3;
	}
	/* the shell waits on this connection: blocking */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	int rc = pv_shell(fd, k.name, PV_SHELL_ESCAPE);
	close(fd);
	return rc < 0 ? 3 : rc;
}

static volatile sig_atomic_t stop;
static void on_stop(int sig) { (void)sig; stop = 1; }

int cmd_console(int argc, char **argv)
{
	bool follow = true;
	const char *spec = NULL;
	struct pv_kept k;
	char dir[PATH_MAX], path[PATH_MAX + 200], entry[PATH_MAX + 200], buf[65536];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-follow") || !strcmp(argv[i], "-n"))
			follow = false;
		else if (argv[i][0] != '-' && !spec)
			spec = argv[i];
		else
			spec = NULL, i = argc;
	}
	if (wants_help(argc, argv) || !spec) {
		fprintf(wants_help(argc, argv) ? stdout : stderr,
			"usage: provium console [--no-follow] NAME|PID\n"
			"The console of a kept VM (`provium ps`): what it said so far, then live\n"
			"until the VM ends or Ctrl-C. --no-follow (-n): what it said so far only.\n");
		return wants_help(argc, argv) ? 0 : 2;
	}
	if (find("console", spec, &k) < 0)
		return 2;
	if (!pv_kept_dir(dir, sizeof(dir), false))
		return 3;
	pv_kept_path(path, sizeof(path), dir, &k, "console");
	pv_kept_path(entry, sizeof(entry), dir, &k, "json");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "provium console: VM %s: %s: %s\n", k.name, path, strerror(errno));
		return 3;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	off_t pos = 0;
	while (!stop) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct stat st;

		if (n > 0) {
			if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
				break;
			fflush(stdout);
			pos += n;
			continue;
		}
		if (!follow)
			break;
		/* gone, or (kvm) its holder forgot it while holding others */
		if (pv_kept_starttime(k.pid) != k.starttime || access(entry, F_OK) < 0) {
			fprintf(stderr, "provium console: VM %s ended\n", k.name);
			break;
		}
		if (fstat(fd, &st) == 0 && st.st_size < pos) /* the keeper cut it back */
			pos = lseek(fd, 0, SEEK_SET);
		usleep(100 * 1000);
	}
	close(fd);
	return 0;
}

/* A kvm VM: its holder stops it (and ends once it holds no VM); one that does not
 * answer is killed, with every VM it holds (the registry's readers forget them). */
static int kill_kvm(const struct pv_kept *k)
{
	if (pv_kept_ask(k, PV_KEPT_KILL) < 0) {
		fprintf(stderr, "provium kill: %s; killing pid %d\n", pv_errmsg(), (int)k->pid);
		kill(k->pid, SIGKILL);
	}
	for (int i = 0; i < 250 && pv_kept_starttime(k->pid) == k->starttime; i++) {
		struct pv_kept *v;
		size_t n;
		bool more = false;

		if (pv_kept_list(&v, &n) == 0) /* it holds others: it stays */
			for (size_t j = 0; j < n; j++)
				more |= v[j].pid == k->pid && strcmp(v[j].name, k->name);
		free(v);
		if (more)
			break;
		usleep(20 * 1000);
	}
	pv_kept_remove(k);
	printf("killed VM %s (pid %d)\n", k->name, (int)k->pid);
	return 0;
}

static int kill_one(const struct pv_kept *k)
{
	if (!strcmp(k->backend, "kvm"))
		return kill_kvm(k);
	if (kill(k->pid, SIGKILL) < 0 && errno != ESRCH) {
		fprintf(stderr, "provium kill: VM %s (pid %d): %s\n", k->name, (int)k->pid,
			strerror(errno));
		return -1;
	}
	/* PID 1 of its namespace: the rest goes with it, then the keeper */
	for (int i = 0; i < 50 && pv_kept_starttime(k->pid) == k->starttime; i++)
		usleep(20 * 1000);
	for (int i = 0; i < 50 && k->keeper > 0 && kill(k->keeper, 0) == 0; i++)
		usleep(20 * 1000);
	pv_kept_remove(k);
	printf("killed VM %s (pid %d)\n", k->name, (int)k->pid);
	return 0;
}

int cmd_kill(int argc, char **argv)
{
	bool all = argc == 2 && !strcmp(argv[1], "--all");
	int bad = 0;

	if (wants_help(argc, argv) || argc < 2) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: provium kill NAME|PID...\n"
			"       provium kill --all\n"
			"Stops kept VMs (`provium ps`) and forgets them.\n");
		return argc < 2 ? 2 : 0;
	}
	if (all) {
		struct pv_kept *v;
		size_t n;

		if (pv_kept_list(&v, &n) < 0) {
			fprintf(stderr, "provium kill: %s\n", pv_errmsg());
			return 3;
		}
		for (size_t i = 0; i < n; i++)
			bad |= kill_one(&v[i]) < 0;
		if (!n)
			printf("no kept VMs\n");
		free(v);
		return bad ? 3 : 0;
	}
	for (int i = 1; i < argc; i++) {
		struct pv_kept k;

		if (find("kill", argv[i], &k) < 0) {
			bad |= 2;
			continue;
		}
		bad |= kill_one(&k) < 0;
	}
	return bad & 2 ? 2 : bad ? 3 : 0;
}
