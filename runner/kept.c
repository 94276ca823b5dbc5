/* kept.c — the registry of kept VMs (runner/kept.h): DIR/PID.json per VM, written by
 * the worker that keeps it, removed by the keeper when the VM ends, by `provium kill`,
 * or by any reader that finds the VM gone. */
#include "runner/kept.h"

#include "runner/netns.h"
#include "vmm/util.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int mkdirs(char *path)
{
	for (char *c = path + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = 0;
		int r = mkdir(path, 0755);
		*c = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

const char *pv_kept_dir(char *buf, size_t n, bool create)
{
	const char *env = getenv("PROVIUM_KEPT_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(buf, n, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, n, "/run/provium/kept");
	else if (xdg && *xdg)
		snprintf(buf, n, "%s/provium/kept", xdg);
	else
		snprintf(buf, n, "/tmp/provium-%u/kept", (unsigned)geteuid());
	if (create) {
		int r = mkdirs(buf);

		if (r < 0) {
			pv_error(-r, "the kept-VM directory %s: %s", buf, strerror(-r));
			return NULL;
		}
	}
	return buf;
}

void pv_kept_path(char *buf, size_t n, const char *dir, const struct pv_kept *k, const char *ext)
{
	if (!strcmp(k->backend, "kvm"))
		snprintf(buf, n, "%s/%d-%s.%s", dir, (int)k->pid, k->name, ext);
	else
		snprintf(buf, n, "%s/%d.%s", dir, (int)k->pid, ext);
}

static bool same_vm(const struct pv_kept *a, const struct pv_kept *b)
{
	return a->pid == b->pid && !strcmp(a->name, b->name) && !strcmp(a->backend, b->backend);
}

unsigned long long pv_kept_starttime(pid_t pid)
{
	char p[64], line[1024];
	unsigned long long st = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(p, "re")))
		return 0;
	if (fgets(line, sizeof(line), f)) {
		/* after "(comm)", which may hold spaces: field 3 is the state */
		char *c = strrchr(line, ')');
		int field = 2;

		if (c && c[1] == ' ' && c[2] != 'Z') /* a zombie is gone */
			for (; *c; c++)
				if (*c == ' ' && ++field == 22) {
					st = strtoull(c + 1, NULL, 10);
					break;
				}
	}
	fclose(f);
	return st;
}

int pv_kept_add(const struct pv_kept *k)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], tmp[PATH_MAX + 48];

	if (!pv_kept_dir(dir, sizeof(dir), true))
		return -EIO;
	json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:b, s:I, s:f, s:s, s:s, s:s}", "name", k->name,
			      "backend", k->backend, "pid", (int)k->pid, "keeper", (int)k->keeper,
			      "userns", k->userns, "starttime", (json_int_t)k->starttime,
			      "since", k->since, "file", k->file, "tmp", k->tmp, "netns", k->netns);
	if (!j)
		return pv_error(ENOMEM, "kept VM %s: cannot build its entry", k->name);
	pv_kept_path(path, sizeof(path), dir, k, "json");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int r = json_dump_file(j, tmp, JSON_INDENT(1));
	json_decref(j);
	if (r < 0 || rename(tmp, path) < 0) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		return pv_error(e, "kept VM %s: cannot write %s: %s", k->name, path, strerror(e));
	}
	return 0;
}

static bool read_entry(const char *path, struct pv_kept *k)
{
	json_t *j = json_load_file(path, 0, NULL);
	const char *name = NULL, *backend = NULL, *file = "", *tmp = "", *netns = "";
	int pid = 0, keeper = 0, userns = 0;
	json_int_t st = 0;
	double since = 0;

	if (!j)
		return false;
	int r = json_unpack(j, "{s:s, s:s, s:i, s?i, s?b, s:I, s?F, s?s, s?s, s?s}", "name", &name,
			    "backend", &backend, "pid", &pid, "keeper", &keeper, "userns", &userns,
			    "starttime", &st, "since", &since, "file", &file, "tmp", &tmp,
			    "netns", &netns);
	if (r == 0) {
		memset(k, 0, sizeof(*k));
		snprintf(k->name, sizeof(k->name), "%s", name);
		snprintf(k->backend, sizeof(k->backend), "%s", backend);
		snprintf(k->file, sizeof(k->file), "%s", file);
		snprintf(k->tmp, sizeof(k->tmp), "%s", tmp);
		snprintf(k->netns, sizeof(k->netns), "%s", netns);
		k->pid = pid;
		k->keeper = keeper;
		k->userns = userns;
		k->starttime = (unsigned long long)st;
		k->since = since;
	}
	json_decref(j);
	return r == 0 && pid > 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0; /* what cannot go stays; the rest still goes */
}

static int by_since(const void *a, const void *b)
{
	const struct pv_kept *x = a, *y = b;

	return x->since < y->since ? -1 : x->since > y->since;
}

/* Forgets k's entry, console and socket; its worker's temp dir (provium-XXXXXX) unless
 * one of the live entries still has it; the run's network namespace (bridges, TAPs,
 * NAT links: a kept kvm VM's network outlives its run) unless one is still in it. */
static void forget(const char *dir, const struct pv_kept *k, const struct pv_kept *live,
		   size_t nlive)
{
	char p[PATH_MAX + 200];
	const char *base = strrchr(k->tmp, '/');
	bool shared_tmp = false, shared_ns = false;

	pv_kept_path(p, sizeof(p), dir, k, "json");
	unlink(p);
	pv_kept_path(p, sizeof(p), dir, k, "console");
	unlink(p);
	pv_kept_path(p, sizeof(p), dir, k, "sock");
	unlink(p);
	for (size_t i = 0; i < nlive; i++) {
		if (same_vm(&live[i], k))
			continue;
		shared_tmp |= !strcmp(live[i].tmp, k->tmp);
		shared_ns |= !strcmp(live[i].netns, k->netns);
	}
	if (k->netns[0] && !shared_ns)
		netns_remove(k->netns);
	if (base && !strncmp(base + 1, "provium-", 8) && !shared_tmp)
		nftw(k->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void pv_kept_remove(const struct pv_kept *k)
{
	char dir[PATH_MAX];
	struct pv_kept *v;
	size_t n;

	if (!pv_kept_dir(dir, sizeof(dir), false) || pv_kept_list(&v, &n) < 0)
		return;
	forget(dir, k, v, n);
	free(v);
}

static bool push(struct pv_kept **v, size_t *len, size_t *cap, const struct pv_kept *k)
{
	if (*len == *cap) {
		struct pv_kept *nv = realloc(*v, (*cap = *cap ? *cap * 2 : 8) * sizeof(**v));
		if (!nv)
			return false;
		*v = nv;
	}
	(*v)[(*len)++] = *k;
	return true;
}

int pv_kept_list(struct pv_kept **out, size_t *n)
{
	char dir[PATH_MAX], p[PATH_MAX + 300];
	struct pv_kept *v = NULL, *gone = NULL;
	size_t len = 0, cap = 0, ngone = 0, capgone = 0;
	struct dirent *d;
	DIR *dp;
	bool ok = true;

	*out = NULL;
	*n = 0;
	if (!pv_kept_dir(dir, sizeof(dir), false) || !(dp = opendir(dir)))
		return 0; /* no directory: nothing was ever kept */
	while (ok && (d = readdir(dp))) {
		size_t l = strlen(d->d_name);
		struct pv_kept k;

		if (l < 6 || strcmp(d->d_name + l - 5, ".json"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
		if (!read_entry(p, &k)) {
			/* half-written by a worker still running? only old junk goes */
			struct stat sb;
			if (stat(p, &sb) == 0 && sb.st_mtime + 60 < time(NULL))
				unlink(p);
			continue;
		}
		/* the VM is gone (or its pid is another's): forgotten below */
		if (pv_kept_starttime(k.pid) != k.starttime)
			ok = push(&gone, &ngone, &capgone, &k);
		else
			ok = push(&v, &len, &cap, &k);
	}
	closedir(dp);
	for (size_t i = 0; ok && i < ngone; i++)
		forget(dir, &gone[i], v, len);
	free(gone);
	if (!ok) {
		free(v);
		return pv_error(ENOMEM, "kept VMs: out of memory");
	}
	if (len)
		qsort(v, len, sizeof(*v), by_since);
	*out = v;
	*n = len;
	return 0;
}

int pv_kept_find(const char *spec, struct pv_kept *out)
{
	struct pv_kept *v;
	size_t n, hits = 0;
	char *end;
	long pid = strtol(spec, &end, 10);
	bool by_pid = *spec && !*end && pid > 0;
	char pids[256] = "";

	if (pv_kept_list(&v, &n) < 0)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		if (by_pid ? v[i].pid != pid : strcmp(v[i].name, spec))
			continue;
		if (hits++ == 0)
			*out = v[i];
		size_t l = strlen(pids);
		snprintf(pids + l, sizeof(pids) - l, "%s%d", l ? ", " : "", (int)v[i].pid);
	}
	free(v);
	if (hits > 1 && by_pid)
		return pv_error(EEXIST, "pid %ld holds %zu kept VMs: name one (`provium ps` lists them)",
				pid, hits);
	if (hits == 0)
		return pv_error(ENOENT, "no kept VM %s %s (`provium ps` lists them; a VM is kept by "
				"`provium run --keep` when a test of its file failed)",
				by_pid ? "with pid" : "named", spec);
	if (hits > 1)
		return pv_error(EEXIST, "%zu kept VMs are named %s (pids %s): name one by its pid",
				hits, spec, pids);
	return 0;
}

int pv_kept_ask(const struct pv_kept *k, char cmd)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char dir[PATH_MAX], path[PATH_MAX + 200], reply[512];
	struct timeval tv = {.tv_sec = 15};
	int fd, got = -1;

	if (!pv_kept_dir(dir, sizeof(dir), false))
		return -EIO;
	pv_kept_path(path, sizeof(path), dir, k, "sock");
	if (strlen(path) >= sizeof(a.sun_path))
		return pv_error(ENAMETOOLONG, "VM %s: socket path %s is too long", k->name, path);
	strcpy(a.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return pv_error(errno, "VM %s: socket: %s", k->name, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || write(fd, &cmd, 1) != 1) {
		int e = errno;
		close(fd);
		return pv_error(e, "VM %s: its holder (pid %d) does not answer on %s: %s", k->name,
				(int)k->pid, path, strerror(e));
	}
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} c;
	struct iovec io = {.iov_base = reply, .iov_len = sizeof(reply) - 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = c.b,
			   .msg_controllen = sizeof(c.b)};
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	int e = n < 0 ? errno : EPROTO;
	struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;

	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(h), sizeof(int));
	close(fd);
	if (n > 0 && reply[0] == 'o' && (cmd != PV_KEPT_SHELL || got >= 0))
		return cmd == PV_KEPT_SHELL ? got : 0;
	if (got >= 0)
		close(got);
	if (n > 0 && reply[0] == 'e') {
		reply[n] = 0;
		return pv_error(EIO, "VM %s: %s", k->name, reply + 1);
	}
	return pv_error(e, "VM %s: its holder (pid %d) did not answer: %s", k->name, (int)k->pid,
			n == 0 ? "it closed the connection" : strerror(e));
}
