/* sched.c — the parent side of runner/worker.h: forks one worker per test file (at
 * most cfg->jobs at a time), reads their events and claim/barrier requests, reaps
 * them, reports crashes as file errors, and on SIGINT/SIGTERM stops scheduling and
 * terminates every worker's process group (SIGTERM, then SIGKILL after a grace). */
#include "runner/sched.h"
#include "runner/claims.h"
#include "runner/events.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

sched_worker_fn sched_worker_entry = worker_main;

struct slot {
	bool used;
	int wid;            /* worker id for claims: the file's index */
	pid_t pid;
	int fd;             /* -1 after EOF */
	char *tmp;
	const char *file;
	uint64_t t0;
	bool reaped;
	int status;
	bool got_file_end, file_end_error;
	struct ev_counts c;
	char *cur_test;     /* a test_start without its test_end yet */
	uint64_t cur_t0;
	uint64_t hang_at;   /* pv_now_ns() when the current test counts as hung; 0: none */
	uint64_t paused_at; /* an interactive session (vm:shell, the prompt) since then */
	double cur_timeout;
	bool hung;
	bool detached;      /* it holds kept kvm VMs now (k="detach"): not waited for */
	bool detached_netns;
	char *start_err;    /* why the worker could not be started */
	char **vms;         /* VMs with a vm_spawn and no vm_exit yet */
	int nvms;
};

struct sched {
	const struct sched_cfg *cfg;
	struct sched_result *res;
	struct slot *slots;
	int nslots;
	struct claims *claims;
	char *buf;
	size_t cap;
	msgpack_sbuffer sb;
	bool stop;
	pid_t parent_pid;
	bool typing;        /* a live worker's slot is paused: the reporters hold */
};

static int sigpipe_fds[2] = {-1, -1};
static volatile sig_atomic_t interrupts;

static void wake(char c)
{
	int e = errno;
	if (sigpipe_fds[1] >= 0) {
		ssize_t r = write(sigpipe_fds[1], &c, 1);
		(void)r;
	}
	errno = e;
}

void sched_interrupt(void)
{
	interrupts++;
	wake('i');
}

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		wake('c');
	else
		sched_interrupt();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int sched_rmtree(const char *path)
{
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return pv_error(errno, "remove %s: %s", path, strerror(errno));
	return 0;
}

/* ---- events the parent makes ---- */

static void emit_packed(struct sched *s)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, s->sb.data, s->sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    s->cfg->on_event)
		s->cfg->on_event(s->cfg->ctx, &u.data);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_clear(&s->sb);
}

static msgpack_packer packer(struct sched *s)
{
	msgpack_packer pk;
	msgpack_sbuffer_clear(&s->sb);
	msgpack_packer_init(&pk, &s->sb, msgpack_sbuffer_write);
	return pk;
}

/* ---- replies ---- */

static struct slot *slot_of(struct sched *s, int wid)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].used && s->slots[i].wid == wid)
			return &s->slots[i];
	return NULL;
}

static void send_reply(void *ctx, int wid, uint64_t id, bool ok, uint64_t index,
		       const char *message)
{
	struct sched *s = ctx;
	struct slot *sl = slot_of(s, wid);
	if (!sl || sl->fd < 0)
		return;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	ev_pack_str(&pk, "k");
	ev_pack_str(&pk, "reply");
	ev_pack_str(&pk, "id");
	msgpack_pack_uint64(&pk, id);
	ev_pack_str(&pk, "ok");
	if (ok) {
		msgpack_pack_true(&pk);
		ev_pack_str(&pk, "index");
		msgpack_pack_uint64(&pk, index);
	} else {
		msgpack_pack_false(&pk);
		ev_pack_str(&pk, "message");
		ev_pack_str(&pk, message ? message : "refused");
	}
	for (int tries = 0; tries < 100; tries++) {
		ssize_t n = send(sl->fd, sb.data, sb.size, MSG_NOSIGNAL);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		struct pollfd p = {.fd = sl->fd, .events = POLLOUT};
		poll(&p, 1, 10);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* ---- messages from a worker ---- */

static void count_outcome(struct sched *s, struct slot *sl, const msgpack_object *ev)
{
	const msgpack_object *o = ev_get(ev, "outcome");
	if (ev_is_str(o, "pass"))
		sl->c.passed++;
	else if (ev_is_str(o, "skip"))
		sl->c.skipped++;
	else if (ev_is_str(o, "todo"))
		sl->c.todo++;
	else {
		sl->c.failed++;
		s->res->failures++;
		if (s->cfg->fail_fast)
			s->stop = true;
	}
}

static void on_worker_event(struct sched *s, struct slot *sl, const msgpack_object *ev)
{
	char kind[32];
	ev_kind(ev, kind, sizeof(kind));
	if (!strcmp(kind, "file_start"))
		return; /* the parent already said so when it forked the worker */
	if (!strcmp(kind, "test_start")) {
		free(sl->cur_test);
		sl->cur_test = ev_strdup(ev, "test");
		sl->cur_t0 = pv_now_ns();
		const msgpack_object *meta = ev_get(ev, "meta");
		const msgpack_object *mt = ev_get(meta, "timeout");
		double t = s->cfg->base.timeout > 0 ? s->cfg->base.timeout : 60;
		if (mt && (mt->type == MSGPACK_OBJECT_FLOAT64 || mt->type == MSGPACK_OBJECT_FLOAT32) &&
		    mt->via.f64 > 0)
			t = mt->via.f64;
		else if (mt && mt->type == MSGPACK_OBJECT_POSITIVE_INTEGER && mt->via.u64 > 0)
			t = (double)mt->via.u64;
		double grace = s->cfg->hang_grace > 0 ? s->cfg->hang_grace : 30;
		sl->cur_timeout = t;
		sl->hang_at = sl->cur_t0 + (uint64_t)((t + grace) * 1e9);
	} else if (!strcmp(kind, "vm_spawn")) {
		char *vm = ev_strdup(ev, "vm");
		char **v = vm ? realloc(sl->vms, (size_t)(sl->nvms + 1) * sizeof(*v)) : NULL;
		if (v) {
			sl->vms = v;
			sl->vms[sl->nvms++] = vm;
		} else {
			free(vm);
		}
	} else if (!strcmp(kind, "vm_exit")) {
		char *vm = ev_strdup(ev, "vm");
		for (int i = 0; vm && i < sl->nvms; i++)
			if (!strcmp(sl->vms[i], vm)) {
				free(sl->vms[i]);
				sl->vms[i] = sl->vms[--sl->nvms];
				break;
			}
		free(vm);
	} else if (!strcmp(kind, "test_end")) {
		free(sl->cur_test);
		sl->cur_test = NULL;
		sl->hang_at = 0;
		count_outcome(s, sl, ev);
	} else if (!strcmp(kind, "file_end")) {
		sl->got_file_end = true;
		if (ev_get(ev, "error")) {
			sl->file_end_error = true;
			s->res->file_errors++;
			if (s->cfg->fail_fast)
				s->stop = true;
		}
	}
	if (s->cfg->on_event)
		s->cfg->on_event(s->cfg->ctx, ev);
}

/* A person is at the keyboard of a live worker (vm:shell(), the prompt): the reporters
 * hold their status line until no live slot is paused. Called wherever a slot's
 * paused_at or liveness changes (a worker can die inside a session). */
static void typing_update(struct sched *s)
{
	bool any = false;

	for (int i = 0; i < s->nslots; i++)
		any |= s->slots[i].used && !s->slots[i].reaped && s->slots[i].paused_at;
	if (any != s->typing) {
		s->typing = any;
		if (s->cfg->on_interactive)
			s->cfg->on_interactive(s->cfg->ctx, any);
	}
}

static void on_message(struct sched *s, struct slot *sl, const msgpack_object *m)
{
	char k[16], name[512];
	const msgpack_object *kobj = ev_get(m, "k");
	if (!kobj || !ev_str(m, "k", k, sizeof(k))) {
		pv_debug("%s: message without k ignored", sl->file);
		return;
	}
	if (!strcmp(k, "event")) {
		const msgpack_object *ev = ev_get(m, "ev");
		if (ev && ev->type == MSGPACK_OBJECT_MAP)
			on_worker_event(s, sl, ev);
	} else if (!strcmp(k, "claim")) {
		if (!ev_str(m, "resource", name, sizeof(name)))
			strcpy(name, "");
		claims_acquire(s->claims, sl->wid, (uint64_t)ev_int(m, "id", 0), name,
			       (uint64_t)ev_int(m, "count", 1), (uint64_t)ev_int(m, "capacity", 1));
	} else if (!strcmp(k, "release")) {
		if (ev_str(m, "resource", name, sizeof(name)))
			claims_release(s->claims, sl->wid, name, (uint64_t)ev_int(m, "count", 1));
	} else if (!strcmp(k, "interactive")) {
		/* a person is at the keyboard (vm:shell(), the prompt): the current test
		 * is not hung meanwhile; its hang deadline moves by the time it took */
		const msgpack_object *on = ev_get(m, "on");
		uint64_t now = pv_now_ns();
		if (on && on->type == MSGPACK_OBJECT_BOOLEAN && on->via.boolean) {
			if (!sl->paused_at)
				sl->paused_at = now;
		} else if (sl->paused_at) {
			if (sl->hang_at)
				sl->hang_at += now - sl->paused_at;
			sl->paused_at = 0;
		}
		typing_update(s);
	} else if (!strcmp(k, "sync")) {
		/* the prompt waits until what it sent before was reported (run()) */
		send_reply(s, sl->wid, (uint64_t)ev_int(m, "id", 0), true, 0, NULL);
	} else if (!strcmp(k, "detach")) {
		/* --keep: the worker goes on as the holder of its kept kvm VMs
		 * (lua/kvm_keep.c); its results are all in, EOF follows */
		const msgpack_object *ns = ev_get(m, "netns");
		sl->detached = true;
		sl->detached_netns = ns && ns->type == MSGPACK_OBJECT_BOOLEAN && ns->via.boolean;
	} else if (!strcmp(k, "barrier")) {
		if (!ev_str(m, "name", name, sizeof(name)))
			strcpy(name, "");
		claims_barrier(s->claims, sl->wid, (uint64_t)ev_int(m, "id", 0), name,
			       (uint64_t)ev_int(m, "parties", 1));
	} else {
		pv_debug("%s: unknown message k=%s ignored", sl->file, k);
	}
}

/* Reads every packet waiting on the slot's channel. EOF closes it. */
static void drain(struct sched *s, struct slot *sl)
{
	while (sl->fd >= 0) {
		ssize_t n = recv(sl->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			n = 0; /* ECONNRESET and friends: as EOF */
		}
		if (n > 0 && (size_t)n > s->cap) {
			char *b = realloc(s->buf, (size_t)n);
			if (!b)
				return;
			s->buf = b;
			s->cap = (size_t)n;
		}
		ssize_t got = n > 0 ? recv(sl->fd, s->buf, s->cap, MSG_DONTWAIT) : 0;
		if (got <= 0) {
			/* 0 from the peek is EOF (a zero-length packet is not something the
			 * worker sends) */
			if (got < 0 && errno == EAGAIN)
				return;
			close(sl->fd);
			sl->fd = -1;
			return;
		}
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, s->buf, (size_t)got, NULL) == MSGPACK_UNPACK_SUCCESS &&
		    u.data.type == MSGPACK_OBJECT_MAP)
			on_message(s, sl, &u.data);
		else
			pv_debug("%s: undecodable packet of %zd bytes ignored", sl->file, got);
		msgpack_unpacked_destroy(&u);
	}
}

/* ---- starting and finishing files ---- */

static int start_file(struct sched *s, struct slot *sl, size_t idx)
{
	const struct sched_cfg *cfg = s->cfg;
	const char *tmpbase = getenv("TMPDIR");
	int sv[2] = {-1, -1};
	memset(sl, 0, sizeof(*sl));
	sl->used = true;
	sl->wid = (int)idx;
	sl->file = cfg->files[idx];
	sl->fd = -1;
	sl->t0 = pv_now_ns();
	s->res->files_started++;

	msgpack_packer pk = packer(s);
	ev_pack_file_start(&pk, pv_wall_ns(), sl->file);
	emit_packed(s);

	const char *err = NULL;
	char errbuf[256];
	if (asprintf(&sl->tmp, "%s/provium-XXXXXX", tmpbase && *tmpbase ? tmpbase : "/tmp") < 0) {
		sl->tmp = NULL;
		err = "out of memory";
	} else if (!mkdtemp(sl->tmp)) {
		snprintf(errbuf, sizeof(errbuf), "cannot make a temp dir %s: %s", sl->tmp,
			 strerror(errno));
		free(sl->tmp);
		sl->tmp = NULL;
		err = errbuf;
	} else if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(errbuf, sizeof(errbuf), "socketpair: %s", strerror(errno));
		err = errbuf;
	}
	if (!err) {
		fflush(stdout);
		fflush(stderr);
		sl->pid = fork();
		if (sl->pid < 0) {
			snprintf(errbuf, sizeof(errbuf), "fork: %s", strerror(errno));
			err = errbuf;
		}
	}
	if (!err && sl->pid == 0) {
		/* the worker */
		setpgid(0, 0);
		/* a parent killed outright (SIGKILL) must not leave workers behind */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != s->parent_pid)
			_exit(2);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		close(sigpipe_fds[0]);
		close(sigpipe_fds[1]);
		close(sv[0]);
		for (int i = 0; i < s->nslots; i++)
			if (&s->slots[i] != sl && s->slots[i].used && s->slots[i].fd >= 0)
				close(s->slots[i].fd);
		/* stdout may carry TAP/JSON/events: whatever a test prints goes to stderr */
		dup2(2, 1);
		struct worker_args a = cfg->base;
		a.file = sl->file;
		a.chan_fd = sv[1];
		a.tmp_dir = sl->tmp;
		a.jobs = cfg->jobs;
		a.fail_fast = cfg->fail_fast;
		int rc = sched_worker_entry(&a);
		_exit(rc & 0xff);
	}
	if (sv[1] >= 0)
		close(sv[1]);
	if (err) {
		if (sv[0] >= 0)
			close(sv[0]);
		sl->reaped = true;
		sl->status = -1;
		sl->start_err = strdup(err); /* finish_file reports it as a file error */
		return -1;
	}
	setpgid(sl->pid, sl->pid); /* both sides, so a kill right after fork reaches it */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	sl->fd = sv[0];
	return 0;
}

static void finish_file(struct sched *s, struct slot *sl, const char *start_error)
{
	char msg[512];
	drain(s, sl);
	if (sl->fd >= 0)
		close(sl->fd);
	sl->fd = -1;
	/* --keep: VMs of failed tests outlive a worker that ended normally, with their
	 * temp dir; anything else the worker left in its group is killed. A holder of
	 * kept kvm VMs (detached) said so before an interrupt could come: it stays. */
	bool keep = s->cfg->base.keep && !start_error && WIFEXITED(sl->status) &&
		    WEXITSTATUS(sl->status) == 0 && sl->c.failed > 0 && (!interrupts || sl->detached);
	if (sl->pid > 0 && !keep)
		kill(-sl->pid, SIGKILL); /* a holder too: an interrupted run keeps nothing */
	if (keep && sl->detached)
		s->res->kept_netns |= sl->detached_netns;

	const char *why = NULL;
	int st = sl->status;
	if (start_error) {
		snprintf(msg, sizeof(msg), "could not start a worker: %s", start_error);
		why = msg;
	} else if (sl->hung) {
		snprintf(msg, sizeof(msg), "test '%s' did not end within its timeout of %g s plus "
			 "%g s: the worker was stuck and was killed", sl->cur_test ? sl->cur_test : "?",
			 sl->cur_timeout, s->cfg->hang_grace > 0 ? s->cfg->hang_grace : 30);
		why = msg;
	} else if (interrupts && !(WIFEXITED(st) && WEXITSTATUS(st) == 0 && sl->got_file_end)) {
		why = "interrupted";
	} else if (WIFSIGNALED(st)) {
		snprintf(msg, sizeof(msg), "worker crashed: killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
		why = msg;
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 1 && !sl->got_file_end) {
		why = "the file failed to load (the worker exited with status 1 without saying why)";
	} else if (WIFEXITED(st) && WEXITSTATUS(st) > 1) {
		snprintf(msg, sizeof(msg), "worker crashed: exited with status %d", WEXITSTATUS(st));
		why = msg;
	} else if (!sl->got_file_end && !s->cfg->base.list_only) {
		why = "worker exited without finishing the file (no file_end)";
	}
	if (why) {
		if (sl->cur_test && !start_error) {
			msgpack_packer pk = packer(s);
			ev_pack_test_error(&pk, pv_wall_ns(), sl->file, sl->cur_test,
					   pv_now_ns() - sl->cur_t0, why);
			emit_packed(s);
			sl->c.failed++;
			s->res->failures++;
		}
		/* its VMs went with the worker (PDEATHSIG, agent socket closed): say so */
		for (int i = 0; i < sl->nvms; i++) {
			msgpack_packer pk = packer(s);
			ev_pack_vm_exit(&pk, pv_wall_ns(), sl->file, sl->vms[i],
					interrupts ? "interrupted" : "worker gone");
			emit_packed(s);
		}
		if (!sl->got_file_end) {
			struct ev_file_end fe = {
				.t = pv_wall_ns(), .file = sl->file, .c = sl->c,
				.duration_ns = pv_now_ns() - sl->t0, .error = why,
			};
			msgpack_packer pk = packer(s);
			ev_pack_file_end(&pk, &fe);
			emit_packed(s);
			s->res->file_errors++;
		} else if (!sl->file_end_error) {
			/* It said file_end and then crashed (e.g. in teardown): still an error. */
			pv_log("%s: %s", sl->file, why);
			s->res->file_errors++;
		}
		if (s->cfg->fail_fast)
			s->stop = true;
	}
	for (int i = 0; i < sl->nvms; i++)
		free(sl->vms[i]);
	free(sl->vms);
	claims_worker_exit(s->claims, sl->wid);
	if (sl->tmp) {
		if (keep)
			pv_log("%s: --keep: temp dir %s kept", sl->file, sl->tmp);
		else
			sched_rmtree(sl->tmp);
		free(sl->tmp);
	}
	free(sl->cur_test);
	memset(sl, 0, sizeof(*sl));
	sl->fd = -1;
}

/* The interrupt to every worker of the run; not to a holder of kept kvm VMs: its
 * results are all in and the run has printed how to reach its VMs. */
static void signal_all(struct sched *s, int sig)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].used && s->slots[i].pid > 0 && !s->slots[i].reaped &&
		    !s->slots[i].detached)
			kill(-s->slots[i].pid, sig);
}

int sched_run(const struct sched_cfg *cfg, struct sched_result *res)
{
	struct sched s = {.cfg = cfg, .res = res, .parent_pid = getpid()};
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term, old_chld, old_pipe;
	int r = 0;
	memset(res, 0, sizeof(*res));
	interrupts = 0;
	s.nslots = cfg->jobs > 0 ? cfg->jobs : 1;
	if ((size_t)s.nslots > cfg->nfiles)
		s.nslots = cfg->nfiles ? (int)cfg->nfiles : 1;
	s.slots = calloc((size_t)s.nslots, sizeof(*s.slots));
	s.claims = claims_new(send_reply, &s);
	s.cap = 64 * 1024;
	s.buf = malloc(s.cap);
	msgpack_sbuffer_init(&s.sb);
	if (!s.slots || !s.claims || !s.buf) {
		r = pv_error(ENOMEM, "out of memory");
		goto out;
	}
	if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = pv_error(errno, "pipe: %s", strerror(errno));
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGCHLD, &sa, &old_chld);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);

	size_t next = 0;
	int running = 0;
	bool term_sent = false;
	uint64_t kill_at = 0, last_tick = 0;
	double grace = cfg->kill_grace > 0 ? cfg->kill_grace : 5.0;
	struct pollfd *pfd = calloc((size_t)s.nslots + 1, sizeof(*pfd));
	int *pslot = calloc((size_t)s.nslots + 1, sizeof(int));
	if (!pfd || !pslot) {
		free(pfd);
		free(pslot);
		r = pv_error(ENOMEM, "out of memory");
		goto restore;
	}
	for (;;) {
		while (!s.stop && !interrupts && running < s.nslots && next < cfg->nfiles) {
			struct slot *sl = NULL;
			for (int i = 0; i < s.nslots && !sl; i++)
				if (!s.slots[i].used)
					sl = &s.slots[i];
			if (!sl)
				break;
			if (start_file(&s, sl, next++) < 0) {
				char *e = sl->start_err;
				sl->start_err = NULL;
				finish_file(&s, sl, e ? e : "out of memory");
				free(e);
				continue;
			}
			running++;
		}
		if (running == 0)
			break;
		if (interrupts && !term_sent) {
			signal_all(&s, SIGTERM);
			term_sent = true;
			kill_at = pv_now_ns() + (uint64_t)(grace * 1e9);
		}
		if (term_sent && (pv_now_ns() >= kill_at || interrupts > 1))
			signal_all(&s, SIGKILL);

		int n = 0;
		pfd[n] = (struct pollfd){.fd = sigpipe_fds[0], .events = POLLIN};
		pslot[n++] = -1;
		for (int i = 0; i < s.nslots; i++)
			if (s.slots[i].used && s.slots[i].fd >= 0) {
				pfd[n] = (struct pollfd){.fd = s.slots[i].fd, .events = POLLIN};
				pslot[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, 250) < 0 && errno != EINTR) {
			r = pv_error(errno, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			char junk[64];
			while (read(sigpipe_fds[0], junk, sizeof(junk)) > 0)
				;
		}
		for (int j = 1; j < n; j++)
			if (pfd[j].revents)
				drain(&s, &s.slots[pslot[j]]);
		for (int i = 0; i < s.nslots; i++) {
			struct slot *sl = &s.slots[i];
			if (!sl->used || sl->reaped)
				continue;
			pid_t p = waitpid(sl->pid, &sl->status, WNOHANG);
			if (p == 0 && sl->detached && sl->fd < 0) {
				/* a holder of kept VMs: done as a worker, as if it exited 0 */
				sl->status = 0;
				p = sl->pid;
			}
			if (p == sl->pid || (p < 0 && errno == ECHILD)) {
				sl->reaped = true;
				typing_update(&s);
				finish_file(&s, sl, NULL);
				running--;
			}
		}
		uint64_t now = pv_now_ns();
		for (int i = 0; i < s.nslots; i++) {
			struct slot *sl = &s.slots[i];
			if (sl->used && !sl->reaped && sl->hang_at && !sl->paused_at && now >= sl->hang_at &&
			    !sl->hung) {
				sl->hung = true;
				kill(-sl->pid, SIGKILL);
			}
		}
		if (cfg->on_tick && now - last_tick >= 200000000ull) {
			last_tick = now;
			cfg->on_tick(cfg->ctx);
		}
	}
	free(pfd);
	free(pslot);
	res->interrupted = interrupts > 0;
	res->stopped = s.stop && next < cfg->nfiles;
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	close(sigpipe_fds[0]);
	close(sigpipe_fds[1]);
	sigpipe_fds[0] = sigpipe_fds[1] = -1;
out:
	claims_free(s.claims);
	free(s.slots);
	free(s.buf);
	msgpack_sbuffer_destroy(&s.sb);
	return r;
}
