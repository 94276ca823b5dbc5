/* agent.h — internals shared by the guest agent's files: connections, requests and
 * replies, the op table, the process table and the agent-held fd table.
 * The wire format itself is agent/proto.h. */
#ifndef PROVIUM_AGENT_H
#define PROVIUM_AGENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/proto.h"

#define PV_ARRAY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A host-side operation still in progress on a connection that other frames must
 * reach: a tail (cancel) or a streamed write_file (data frames from the host). */
struct task {
	uint64_t id;
	struct task *next;
	atomic_bool cancel;
	int wake_fd;          /* eventfd: written to wake the task's poll */
	/* write_file stream sink */
	int sink_fd;
	uint64_t written;
	struct req *req;      /* the request to reply to when the sink ends */
};

struct conn {
	int fd;
	atomic_int refs;
	atomic_bool dead;           /* the socket failed or the reader ended */
	int dead_fd;                /* eventfd, readable once the connection is torn down */
	pthread_mutex_t wlock;      /* one frame at a time on the socket */
	pthread_mutex_t lock;       /* tasks */
	pthread_cond_t cond;        /* a task went away */
	struct task *tasks;
};

/* One request. Owns its frame; args points into it (NULL: no args). */
struct req {
	struct conn *c;
	uint64_t id;
	const msgpack_object *args;
	struct pv_frame frame;
	struct pv_fbuf fb;
	bool fb_init;
	bool deferred;              /* the handler keeps the req (replies later) */
	const char *code;           /* error code for the failure reply */
	int err;                    /* errno recorded by fail()/invalid() */
	char msg[256];              /* failure message */
};

struct op {
	const char *name;
	int (*fn)(struct req *r);
	bool threaded;              /* may block: runs on its own thread */
};

/* conn.c */
void conn_get(struct conn *c);
void conn_put(struct conn *c);
/* Serves one connected socket until it closes; takes ownership of fd. */
void conn_serve(int fd);
/* Finishes b and writes it; -EPIPE once the connection is dead. */
int conn_send(struct conn *c, struct pv_fbuf *b);
int conn_send_stream(struct conn *c, uint64_t id, const char *stream,
		     const void *data, size_t len);
int conn_send_eof(struct conn *c, uint64_t id, const char *stream);
/* write(2) until done (EINTR retried, EAGAIN polled). 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
struct task *task_add(struct conn *c, uint64_t id);
/* Unlinks t, closes its wake fd, frees it and wakes conn_cond waiters. */
void task_remove(struct conn *c, struct task *t);
struct req *req_new(struct conn *c);
void req_free(struct req *r);

/* Replies. reply_ok() returns the request's buffer with the reply header packed:
 * pack exactly one result map, then reply_send(). fail()/invalid() record the
 * error for the dispatcher and return -err. */
struct pv_fbuf *reply_ok(struct req *r);
int reply_send(struct req *r);
int reply_empty(struct req *r);
int reply_error(struct req *r, int err);
int fail(struct req *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int invalid(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Argument helpers: record an `invalid` failure naming the arg. */
int arg_str(struct req *r, const char *key, char *buf, size_t size);  /* required */
int arg_path(struct req *r, const char *key, char *buf);               /* PATH_MAX */
int arg_int(struct req *r, const char *key, int64_t *v);              /* required */
int arg_int_opt(struct req *r, const char *key, int64_t *v, int64_t def);
int arg_bool_opt(struct req *r, const char *key, bool *v, bool def);

/* main.c */
extern bool agent_allow_reboot;
/* SIGKILLs every process group the agent started, then exits. */
void agent_exit(int status) __attribute__((noreturn));

/* procs.c: every child the agent started, reaped by one reaper thread. */
enum proc_state { PROC_RUNNING, PROC_EXITED, PROC_SIGNALED };
struct proc {
	pid_t pid;
	struct proc *next;
	struct conn *owner;       /* killed when it closes; not a reference */
	enum proc_state state;
	int code, sig;
	int exit_fd;              /* eventfd, readable once reaped */
	int stdin_fd;             /* spawn: write end of stdin, -1 when closed */
	int pty_fd;               /* spawn with pty: the master (proc_resize), else -1 */
	bool removed;
	int refs;
};

/* A parsed exec/spawn command. */
struct cmd {
	char **argv;
	char **envp;
	char *path;               /* resolved program */
	char **sh_argv;           /* a plain shell command run directly: the shell's
				   * argv, for a program only the shell can run */
	char cwd[4096];
	bool has_cwd;
	bool set_ids;
	uid_t uid;
	gid_t gid;
	const uint8_t *stdin_data;
	size_t stdin_len;
	bool pty;                 /* on a new pseudo-terminal (agent/pty.c) */
	unsigned short rows, cols;
};

/* agent/pty.c */
int pty_parse(struct req *r, struct cmd *cmd);        /* the `pty` arg */
int pty_open(struct cmd *cmd, int *master, int *slave); /* 0 or -errno */
int pty_child(void);                                  /* after fork, fds 0-2 set */
int op_proc_resize(struct req *r);

int cmd_parse(struct req *r, struct cmd *cmd);
void cmd_free(struct cmd *cmd);
/* Forks cmd in its own process group with pipes for stdin/stdout/stderr (each
 * *fd gets the parent's end; in_fd may be NULL for /dev/null stdin) and registers
 * it. Returns the proc (one reference held) or NULL after fail(). */
struct proc *cmd_start(struct req *r, struct cmd *cmd, int *in_fd, int *out_fd,
		       int *err_fd);

void procs_start_reaper(void);
struct proc *proc_find(pid_t pid);   /* takes a reference, NULL if unknown */
void proc_put(struct proc *p);
/* Drops p from the table (after a reference is put, lookups miss it). */
void proc_remove(struct proc *p);
/* Waits until p exits or timeout_ns passes (<0: forever). 0 or -ETIMEDOUT. */
int proc_wait_exit(struct proc *p, int64_t timeout_ns);
void procs_kill_owned(struct conn *c);
void procs_kill_all(void);
void pack_status(struct pv_fbuf *b, struct proc *p);   /* state, code, signal */
/* The exit status under the table lock: code -1 unless exited, sig 0 unless signaled. */
void proc_snapshot(struct proc *p, enum proc_state *state, int *code, int *sig);

/* fds.c */
void fds_close_owned(struct conn *c);
/* A dup of an agent-held fd (for tail_fd), or -EBADF. */
int fds_dup(int fd);

/* sig.c-like helper in syscalls.c: "TERM", "SIGTERM", or a number. */
int parse_signal(const msgpack_object *o);
/* Reply to a poweroff/reboot request, then do it (never returns on success). */
int do_poweroff(struct req *r, bool reboot);

/* Op handlers, one group per file. */
int op_ping(struct req *r);
int op_sleep(struct req *r);
int op_uname(struct req *r);
int op_sethostname(struct req *r);
int op_clock_get(struct req *r);
int op_clock_set(struct req *r);
int op_poweroff(struct req *r);
int op_reboot(struct req *r);
int op_exec(struct req *r);
int op_spawn(struct req *r);
int op_proc_write(struct req *r);
int op_proc_close_stdin(struct req *r);
int op_proc_signal(struct req *r);
int op_proc_kill(struct req *r);
int op_proc_wait(struct req *r);
int op_proc_status(struct req *r);
/* The process named by the `pid` arg (a reference), or NULL after fail(). */
struct proc *arg_proc(struct req *r);
int op_read_file(struct req *r);
int op_write_file(struct req *r);
/* A host stream frame for a write_file sink. */
void write_file_stream(struct conn *c, struct task *t, const struct pv_frame *f);
int op_open(struct req *r);
int op_read(struct req *r);
int op_write(struct req *r);
int op_seek(struct req *r);
int op_tell(struct req *r);
int op_fsync(struct req *r);
int op_close(struct req *r);
int op_stat(struct req *r);
int op_exists(struct req *r);
int op_ls(struct req *r);
int op_mkdir(struct req *r);
int op_rm(struct req *r);
int op_rename(struct req *r);
int op_chmod(struct req *r);
int op_truncate(struct req *r);
int op_tail(struct req *r);
int op_tail_fd(struct req *r);
int op_cancel(struct req *r);
int op_syscall(struct req *r);

#endif
