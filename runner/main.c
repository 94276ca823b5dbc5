/* main.c — the `provium` command line: dispatch to one runner/cmd_<name>.c per
 * subcommand. This is the only place that exits the process. */
#include "runner/commands.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{"run", cmd_run, "run test files"},
	{"repl", cmd_repl, "FILE: load a test file, then a Lua prompt (run --interactive)"},
	{"list", cmd_list, "list files and tests, run nothing"},
	{"doctor", cmd_doctor, "check this host and say how to fix what is missing"},
	{"kernel", cmd_kernel, "build|path: the guest kernel and initramfs"},
	{"snapshots", cmd_snapshots, "ls|rm NAME|prune: the snapshot cache"},
	{"events", cmd_events, "pretty-print a recorded event stream"},
	{"version", cmd_version, "version, PROTOCOL_VERSION, backends"},
	{"boot", cmd_boot, "boot one VM with its console on this terminal"},
	{"ps", cmd_ps, "list the VMs `run --keep` left running"},
	{"shell", cmd_shell, "NAME: a shell in a kept VM"},
	{"console", cmd_console, "NAME: a kept VM's console, live"},
	{"kill", cmd_kill, "NAME...|--all: stop kept VMs"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: provium <command> [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n`provium <command> --help` for a command's flags.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "provium: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
