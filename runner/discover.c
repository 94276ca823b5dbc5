/* discover.c — finds the test files of a run (RUNNER.md: `provium run [PATH...]`),
 * slices them for --shard and orders them for --shuffle. */
#include "runner/discover.h"
#include "vmm/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int discover_is_test_name(const char *base)
{
	size_t n = strlen(base);
	if (n > 9 && !strcmp(base + n - 9, "_test.lua"))
		return 1;
	return n > 9 && !strncmp(base, "test_", 5) && !strcmp(base + n - 4, ".lua");
}

static int push(struct file_list *fl, const char *path)
{
	if (fl->n == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 32;
		char **v = realloc(fl->v, cap * sizeof(char *));
		if (!v)
			return pv_error(ENOMEM, "out of memory");
		fl->v = v;
		fl->cap = cap;
	}
	if (!(fl->v[fl->n] = strdup(path)))
		return pv_error(ENOMEM, "out of memory");
	fl->n++;
	return 0;
}

static int walk(struct file_list *fl, const char *dir, int depth)
{
	if (depth > 64)
		return 0; /* a symlink loop; stop quietly */
	DIR *d = opendir(dir);
	if (!d)
		return pv_error(errno, "%s: %s", dir, strerror(errno));
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue; /* ., .., hidden directories (.git) */
		char *p;
		size_t dl = strlen(dir);
		if (asprintf(&p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name) < 0) {
			r = pv_error(ENOMEM, "out of memory");
			break;
		}
		/* "./x_test.lua" reads better as "x_test.lua" */
		const char *shown = !strncmp(p, "./", 2) && !strcmp(dir, ".") ? p + 2 : p;
		struct stat st;
		if (stat(p, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				r = walk(fl, p, depth + 1);
			else if (S_ISREG(st.st_mode) && discover_is_test_name(e->d_name))
				r = push(fl, shown);
		}
		free(p);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int discover_files(char *const *paths, int npaths, struct file_list *out)
{
	int r = 0;
	memset(out, 0, sizeof(*out));
	if (npaths == 0) {
		struct stat st;
		static char *const dflt_tests[] = {"tests"}, *const dflt_cwd[] = {"."};
		if (stat("tests", &st) == 0 && S_ISDIR(st.st_mode))
			return discover_files(dflt_tests, 1, out);
		return discover_files(dflt_cwd, 1, out);
	}
	for (int i = 0; i < npaths; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0) {
			r = pv_error(errno, "%s: %s", paths[i], strerror(errno));
			goto fail;
		}
		if (S_ISDIR(st.st_mode))
			r = walk(out, paths[i], 0);
		else
			r = push(out, paths[i]); /* an explicit file runs whatever its name */
		if (r < 0)
			goto fail;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(char *), cmp);
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w && !strcmp(out->v[w - 1], out->v[i]))
			free(out->v[i]);
		else
			out->v[w++] = out->v[i];
	}
	out->n = w;
	return 0;
fail:
	discover_free(out);
	return r;
}

void discover_shard(struct file_list *fl, int k, int n)
{
	if (n <= 1)
		return;
	size_t w = 0;
	for (size_t i = 0; i < fl->n; i++) {
		if ((int)(i % (size_t)n) + 1 == k)
			fl->v[w++] = fl->v[i];
		else
			free(fl->v[i]);
	}
	fl->n = w;
}

uint64_t pv_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void discover_shuffle(struct file_list *fl, uint64_t seed)
{
	uint64_t st = seed;
	for (size_t i = fl->n; i > 1; i--) {
		size_t j = (size_t)(pv_splitmix64(&st) % i);
		char *t = fl->v[i - 1];
		fl->v[i - 1] = fl->v[j];
		fl->v[j] = t;
	}
}

void discover_free(struct file_list *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->v[i]);
	free(fl->v);
	memset(fl, 0, sizeof(*fl));
}
