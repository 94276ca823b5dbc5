/* shell.h — an interactive shell in a VM on this terminal (runner/shell.c). */
#ifndef PROVIUM_SHELL_H
#define PROVIUM_SHELL_H
#include <stddef.h>
#include <sys/types.h>

/* The default escape byte: Ctrl-] (as telnet), leaves the shell. */
#define PV_SHELL_ESCAPE 0x1d

/* Runs /bin/sh on a pty in the guest over fd, a FRESH agent connection (no hello
 * exchanged yet; the caller keeps and closes fd), until the shell exits or the
 * escape byte is typed (esc < 0: none). This terminal is in raw mode meanwhile and
 * its window size follows SIGWINCH. With stdin not a terminal the shell has none
 * either: it reads stdin through a pipe and ends at its end. Returns the shell's exit status (128 + signal), 0 when the
 * user left with the escape key, or -1 with the reason in err. */
int pv_shell_ex(int fd, const char *vm, int esc, char *err, size_t errlen);
/* The same, printing a failure as "provium: shell in VM NAME: ..." on stderr. */
int pv_shell(int fd, const char *vm, int esc);
/* A worker runs in a process group of its own, in the background of this terminal:
 * pv_take_terminal() makes its group the foreground one (to read the keyboard) and
 * returns the group to give it back to with pv_give_terminal(), or 0 (nothing to do:
 * no terminal, or ours already). The shell and the prompt (lua/repl.c) use them. */
pid_t pv_take_terminal(void);
void pv_give_terminal(pid_t fg);
#endif
