/* procs.c — the table of processes the agent started, and the one reaper thread
 * that collects every child (ours and orphans handed to us as subreaper) so a
 * status is recorded exactly once and nothing is left a zombie. */
#include "agent/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t procs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t procs_cond = PTHREAD_COND_INITIALIZER;
static struct proc *procs;
static int nrunning;

/* Called by cmd_start with procs_lock held, right after fork. */
void procs_insert_locked(struct proc *p)
{
	p->next = procs;
	procs = p;
	p->refs = 2; /* the table's and the caller's */
	nrunning++;
	pthread_cond_broadcast(&procs_cond);
}

static void proc_free(struct proc *p)
{
	if (p->exit_fd >= 0)
		close(p->exit_fd);
	if (p->stdin_fd >= 0)
		close(p->stdin_fd);
	if (p->pty_fd >= 0)
		close(p->pty_fd);
	free(p);
}

static void unlink_locked(struct proc *p)
{
	for (struct proc **pp = &procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

/* Records a reaped child. Returns a proc to free (its last reference went with
 * the table's), or NULL. */
static struct proc *record(pid_t pid, int status)
{
	for (struct proc *p = procs; p; p = p->next) {
		uint64_t one = 1;

		if (p->pid != pid || p->state != PROC_RUNNING)
			continue;
		if (WIFSIGNALED(status)) {
			p->state = PROC_SIGNALED;
			p->sig = WTERMSIG(status);
			p->code = -1;
		} else {
			p->state = PROC_EXITED;
			p->code = WEXITSTATUS(status);
		}
		nrunning--;
		if (write(p->exit_fd, &one, sizeof(one)) < 0) {
			/* the eventfd cannot overflow with one write */
		}
		pthread_cond_broadcast(&procs_cond);
		/* A removed proc stayed listed only until its status came in. */
		if (p->removed) {
			unlink_locked(p);
			if (--p->refs == 0)
				return p;
		}
		return NULL;
	}
	return NULL;
}

static void *reaper(void *arg)
{
	(void)arg;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, __WALL);

		if (pid > 0) {
			struct proc *dead;

			pthread_mutex_lock(&procs_lock);
			dead = record(pid, status);
			pthread_mutex_unlock(&procs_lock);
			if (dead)
				proc_free(dead);
		} else if (errno == ECHILD) {
			pthread_mutex_lock(&procs_lock);
			while (nrunning == 0)
				pthread_cond_wait(&procs_cond, &procs_lock);
			pthread_mutex_unlock(&procs_lock);
		}
	}
	return NULL;
}

void procs_start_reaper(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, reaper, NULL) != 0) {
		fprintf(stderr, "provium-agent: cannot start the reaper thread\n");
		exit(1);
	}
	pthread_detach(th);
}

struct proc *proc_find(pid_t pid)
{
	struct proc *found = NULL;

	pthread_mutex_lock(&procs_lock);
	for (struct proc *p = procs; p; p = p->next) {
		if (p->pid == pid && !p->removed) {
			found = p;
			found->refs++;
			break;
		}
	}
	pthread_mutex_unlock(&procs_lock);
	return found;
}

void proc_put(struct proc *p)
{
	bool last;

	pthread_mutex_lock(&procs_lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&procs_lock);
	if (last)
		proc_free(p);
}

/* Hides p from lookups. It stays listed (so the reaper still records its exit
 * for threads holding a reference) until it has exited; then the table's
 * reference goes. Called with procs_lock held; returns p when it must be freed. */
static struct proc *remove_locked(struct proc *p)
{
	if (p->removed)
		return NULL;
	p->removed = true;
	if (p->state == PROC_RUNNING)
		return NULL;
	unlink_locked(p);
	return --p->refs == 0 ? p : NULL;
}

void proc_remove(struct proc *p)
{
	struct proc *dead;

	pthread_mutex_lock(&procs_lock);
	dead = remove_locked(p);
	pthread_mutex_unlock(&procs_lock);
	if (dead)
		proc_free(dead);
}

int proc_wait_exit(struct proc *p, int64_t timeout_ns)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ns >= 0) {
		deadline.tv_sec += timeout_ns / 1000000000;
		deadline.tv_nsec += timeout_ns % 1000000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&procs_lock);
	while (p->state == PROC_RUNNING) {
		if (timeout_ns < 0) {
			pthread_cond_wait(&procs_cond, &procs_lock);
		} else if (pthread_cond_clockwait(&procs_cond, &procs_lock, CLOCK_MONOTONIC, &deadline) ==
			   ETIMEDOUT) {
			rc = p->state == PROC_RUNNING ? -ETIMEDOUT : 0;
			break;
		}
	}
	pthread_mutex_unlock(&procs_lock);
	return rc;
}

void proc_snapshot(struct proc *p, enum proc_state *state, int *code, int *sig)
{
	pthread_mutex_lock(&procs_lock);
	*state = p->state;
	*code = p->state == PROC_EXITED ? p->code : -1;
	*sig = p->state == PROC_SIGNALED ? p->sig : 0;
	pthread_mutex_unlock(&procs_lock);
}

void pack_status(struct pv_fbuf *b, struct proc *p)
{
	static const char *const names[] = { "running", "exited", "signaled" };

	pthread_mutex_lock(&procs_lock);
	pv_pack_map(b, 3);
	pv_pack_kv_str(b, "state", names[p->state]);
	pv_pack_kv_int(b, "code", p->state == PROC_EXITED ? p->code : -1);
	pv_pack_kv_int(b, "signal", p->state == PROC_SIGNALED ? p->sig : 0);
	pthread_mutex_unlock(&procs_lock);
}

static void kill_where(struct conn *c, bool all)
{
	struct proc *dead = NULL;

	pthread_mutex_lock(&procs_lock);
	for (struct proc *p = procs, *next; p; p = next) {
		struct proc *d;

		next = p->next;
		if (!all && p->owner != c)
			continue;
		if (p->state == PROC_RUNNING)
			kill(-p->pid, SIGKILL);
		/* The connection is gone: nobody can ask for this status any more. */
		if (!all && (d = remove_locked(p))) {
			d->next = dead;
			dead = d;
		}
	}
	pthread_mutex_unlock(&procs_lock);
	while (dead) {
		struct proc *p = dead;

		dead = p->next;
		proc_free(p);
	}
}

void procs_kill_owned(struct conn *c)
{
	kill_where(c, false);
}

void procs_kill_all(void)
{
	kill_where(NULL, true);
}
