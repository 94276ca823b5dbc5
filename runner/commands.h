/* commands.h — one function per `provium` subcommand, each in its own file
 * (runner/cmd_<name>.c). argv[0] is the subcommand name. Each returns the process
 * exit status (RUNNER.md: 0 ok, 1 failures, 2 usage, 3 infrastructure, 4 nothing
 * matched, 130 interrupted). */
#ifndef PROVIUM_COMMANDS_H
#define PROVIUM_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_repl(int argc, char **argv);    /* run --interactive FILE */
int cmd_list(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_events_merge(int argc, char **argv); /* argv[0] is "merge" */
int cmd_version(int argc, char **argv);
int cmd_boot(int argc, char **argv);
int cmd_ps(int argc, char **argv);      /* cmd_kept.c: the kept-VM commands */
int cmd_shell(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_kill(int argc, char **argv);

#define PROVIUM_VERSION "0.1.0"

#endif
