/* cmd_snapshots.c — `provium snapshots ls|rm NAME|prune [--all]`: the snapshot
 * cache, $PROVIUM_CACHE_DIR/snapshots/<NAME> (runner/kernel.h resolves the cache
 * directory). A VM snapshot is a directory with vm.state; a lab snapshot is a
 * directory of VM snapshots; "<NAME>.tmp-<pid>" is a save that never finished.
 * docs/snapshots.md. */
#include "runner/commands.h"
#include "runner/kernel.h"

#include "vmm/snapshot.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: provium snapshots [ls]\n"
		"       provium snapshots rm NAME...\n"
		"       provium snapshots prune [--all]\n"
		"\n"
		"ls      list the cached snapshots (name, kind, VM, memory, size on disk,\n"
		"        created); a snapshot whose state file is refused shows as broken\n"
		"rm      remove the named snapshots\n"
		"prune   remove unfinished and broken snapshots; --all removes every one\n"
		"The cache is $PROVIUM_CACHE_DIR/snapshots (default $XDG_CACHE_HOME/provium).\n");
}

/* "a/b" into buf; false when it does not fit. */
static bool join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);
	return n >= 0 && (size_t)n < len;
}

static int snapshots_dir(char *out, size_t len)
{
	char cache[PATH_MAX];
	int rc = kernel_cache_dir(cache, sizeof(cache));
	if (rc < 0)
		return rc;
	int n = snprintf(out, len, "%s/snapshots", cache);
	if (n < 0 || (size_t)n >= len)
		return pv_error(ENAMETOOLONG, "cache directory %s is too long", cache);
	return 0;
}

static void human(uint64_t b, char *buf, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

enum kind { K_VM, K_LAB, K_UNFINISHED, K_BROKEN };

struct entry {
	enum kind kind;
	char vm[256];       /* VM name, or the lab's VM names */
	unsigned memory_mib;
	uint64_t created_ns;
	char why[512];      /* broken: the refusal */
};

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int list_names(const char *dir, char ***out, size_t *n);
static void free_names(char **names, size_t n);

/* Classifies one cache entry and reads its details. */
static void inspect(const char *dir, const char *name, struct entry *e)
{
	char path[PATH_MAX], state[PATH_MAX];
	struct vm_snapshot_info info;
	memset(e, 0, sizeof(*e));
	if (!join(path, sizeof(path), dir, name)) {
		e->kind = K_BROKEN;
		snprintf(e->why, sizeof(e->why), "path too long");
		return;
	}
	if (strstr(name, ".tmp-")) {
		e->kind = K_UNFINISHED;
		snprintf(e->why, sizeof(e->why), "a save that never finished");
		return;
	}
	if (join(state, sizeof(state), path, SNAPSHOT_STATE_FILE) && is_file(state)) {
		if (vm_snapshot_info(path, &info) < 0) {
			e->kind = K_BROKEN;
			snprintf(e->why, sizeof(e->why), "%s", pv_errmsg());
			return;
		}
		e->kind = K_VM;
		snprintf(e->vm, sizeof(e->vm), "%s", info.name);
		e->memory_mib = info.memory_mib;
		e->created_ns = info.created_ns;
		return;
	}
	/* A lab snapshot: every subdirectory is a VM snapshot (listed sorted). */
	char **subs;
	size_t nsubs;
	unsigned n = 0;
	if (list_names(path, &subs, &nsubs) < 0)
		nsubs = 0;
	for (size_t i = 0; i < nsubs; i++) {
		char sub[PATH_MAX], st[PATH_MAX];
		if (!join(sub, sizeof(sub), path, subs[i]) ||
		    !join(st, sizeof(st), sub, SNAPSHOT_STATE_FILE) || !is_file(st))
			continue;
		if (vm_snapshot_info(sub, &info) < 0) {
			e->kind = K_BROKEN;
			snprintf(e->why, sizeof(e->why), "%s", pv_errmsg());
			free_names(subs, nsubs);
			return;
		}
		size_t l = strlen(e->vm);
		snprintf(e->vm + l, sizeof(e->vm) - l, "%s%s", l ? "," : "", subs[i]);
		e->memory_mib += info.memory_mib;
		if (info.created_ns > e->created_ns)
			e->created_ns = info.created_ns;
		n++;
	}
	free_names(subs, nsubs);
	if (!n) {
		e->kind = K_BROKEN;
		snprintf(e->why, sizeof(e->why), "no %s in it or its subdirectories",
			 SNAPSHOT_STATE_FILE);
		return;
	}
	e->kind = K_LAB;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entry names in the cache, sorted; *n = 0 when there is no cache yet. */
static int list_names(const char *dir, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : pv_error(errno, "%s: %s", dir, strerror(errno));
	struct dirent *e;
	size_t cap = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(*out, cap * sizeof(char *));
			if (!nn)
				break;
			*out = nn;
		}
		(*out)[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof(char *), cmp_str);
	return 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static const char *kind_name(enum kind k)
{
	switch (k) {
	case K_VM: return "vm";
	case K_LAB: return "lab";
	case K_UNFINISHED: return "unfinished";
	case K_BROKEN: return "broken";
	}
	return "?";
}

static int do_ls(const char *dir)
{
	char **names;
	size_t n;
	if (list_names(dir, &names, &n) < 0) {
		fprintf(stderr, "provium snapshots: %s\n", pv_errmsg());
		return 3;
	}
	if (!n) {
		printf("no snapshots in %s\n", dir);
		return 0;
	}
	printf("%-24s %-10s %-20s %8s %10s  %s\n", "NAME", "KIND", "VM", "MEMORY", "SIZE",
	       "CREATED");
	for (size_t i = 0; i < n; i++) {
		struct entry e;
		char path[PATH_MAX], size[32], mem[32] = "-", when[32] = "-";
		if (!join(path, sizeof(path), dir, names[i]))
			continue;
		inspect(dir, names[i], &e);
		human(snapshot_du(path), size, sizeof(size));
		if (e.memory_mib)
			snprintf(mem, sizeof(mem), "%u MiB", e.memory_mib);
		if (e.created_ns) {
			time_t t = (time_t)(e.created_ns / 1000000000ull);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		printf("%-24s %-10s %-20s %8s %10s  %s\n", names[i], kind_name(e.kind),
		       e.vm[0] ? e.vm : "-", mem, size, when);
		if (e.kind == K_BROKEN || e.kind == K_UNFINISHED)
			printf("  %s\n", e.why);
	}
	free_names(names, n);
	return 0;
}

static bool valid_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

static int do_rm(const char *dir, int argc, char **argv)
{
	int status = 0;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		char path[PATH_MAX];
		if (!valid_name(argv[i])) {
			fprintf(stderr, "provium snapshots rm: \"%s\" is not a snapshot name\n",
				argv[i]);
			status = 2;
			continue;
		}
		int rc = join(path, sizeof(path), dir, argv[i]) ? snapshot_rm_tree(path) : -ENAMETOOLONG;
		if (rc == -ENOENT) {
			fprintf(stderr, "provium snapshots rm: no snapshot \"%s\" in %s\n", argv[i],
				dir);
			status = status ? status : 1;
		} else if (rc < 0) {
			fprintf(stderr, "provium snapshots rm: %s: %s\n", path, strerror(-rc));
			status = 3;
		} else {
			printf("removed %s\n", argv[i]);
		}
	}
	return status;
}

static int do_prune(const char *dir, bool all)
{
	char **names;
	size_t n;
	int status = 0, removed = 0;
	if (list_names(dir, &names, &n) < 0) {
		fprintf(stderr, "provium snapshots: %s\n", pv_errmsg());
		return 3;
	}
	for (size_t i = 0; i < n; i++) {
		struct entry e;
		char path[PATH_MAX];
		inspect(dir, names[i], &e);
		if (!all && e.kind != K_BROKEN && e.kind != K_UNFINISHED)
			continue;
		int rc = join(path, sizeof(path), dir, names[i]) ? snapshot_rm_tree(path) : -ENAMETOOLONG;
		if (rc < 0) {
			fprintf(stderr, "provium snapshots prune: %s: %s\n", path, strerror(-rc));
			status = 3;
			continue;
		}
		removed++;
		printf("removed %s (%s)\n", names[i], kind_name(e.kind));
	}
	printf("pruned %d snapshot%s\n", removed, removed == 1 ? "" : "s");
	free_names(names, n);
	return status;
}

int cmd_snapshots(int argc, char **argv)
{
	char dir[PATH_MAX];
	const char *sub = argc > 1 ? argv[1] : "ls";
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		usage(stdout);
		return 0;
	}
	if (snapshots_dir(dir, sizeof(dir)) < 0) {
		fprintf(stderr, "provium snapshots: %s\n", pv_errmsg());
		return 3;
	}
	if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
		if (argc > 2) {
			usage(stderr);
			return 2;
		}
		return do_ls(dir);
	}
	if (!strcmp(sub, "rm"))
		return do_rm(dir, argc - 2, argv + 2);
	if (!strcmp(sub, "prune")) {
		bool all = argc == 3 && !strcmp(argv[2], "--all");
		if (argc > 3 || (argc == 3 && !all)) {
			usage(stderr);
			return 2;
		}
		return do_prune(dir, all);
	}
	fprintf(stderr, "provium snapshots: unknown subcommand \"%s\"\n", sub);
	usage(stderr);
	return 2;
}
