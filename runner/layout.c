/* layout.c — finds the agent, the sandbox rootfs and the kernel build scripts
 * relative to the running binary, in a checkout or an install (runner/layout.h). */
#include "runner/layout.h"

#include "vmm/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* make passes the PREFIX the binary is built for (Makefile, `make install`). */
#ifndef PROVIUM_PREFIX
#define PROVIUM_PREFIX "/usr/local"
#endif

static char exe_dir[PATH_MAX];

const char *layout_exe_dir(void)
{
	if (!exe_dir[0]) {
		ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
		if (n < 0)
			n = 0;
		exe_dir[n] = 0;
		char *slash = strrchr(exe_dir, '/');
		if (slash)
			*slash = 0;
	}
	return exe_dir;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_exec(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The first of "<exe_dir>/<rel>..." then "<PREFIX>/<prefixed>" (when not NULL) for
 * which ok() holds, into out; returns its index, or -1. The places tried are
 * appended to tried when given (for the error message). */
static int find(char *out, size_t len, const char *const *rel, size_t nrel, const char *prefixed,
		bool (*ok)(const char *), char *tried, size_t tried_len)
{
	const char *dir = layout_exe_dir();
	for (size_t i = 0; i < nrel + (prefixed != NULL); i++) {
		int n = i < nrel ? snprintf(out, len, "%s/%s", dir, rel[i]) :
				   snprintf(out, len, "%s/%s", PROVIUM_PREFIX, prefixed);
		if (n < 0 || (size_t)n >= len)
			continue;
		if (ok(out)) {
			char real[PATH_MAX];
			if (realpath(out, real) && strlen(real) < len)
				strcpy(out, real); /* PREFIX/lib/..., not PREFIX/bin/../lib/... */
			return (int)i;
		}
		if (tried) {
			size_t used = strlen(tried);
			snprintf(tried + used, tried_len - used, "%s%s", used ? ", " : "", out);
		}
	}
	out[0] = 0;
	return -1;
}

int layout_agent(char *out, size_t len)
{
	const char *env = getenv("PROVIUM_AGENT");
	if (env && *env) {
		if (!is_exec(env))
			return pv_error(ENOENT, "PROVIUM_AGENT=%s is not an executable file", env);
		snprintf(out, len, "%s", env);
		return 0;
	}
	/* build/provium-agent; PREFIX/bin/../lib/provium/provium-agent */
	static const char *const rel[] = {"provium-agent", "../lib/provium/provium-agent"};
	char tried[3 * PATH_MAX] = "";
	if (find(out, len, rel, PV_ARRAY_SIZE(rel), "lib/provium/provium-agent", is_exec, tried,
		 sizeof(tried)) >= 0)
		return 0;
	return pv_error(ENOENT, "no guest agent (looked at %s): run `make` in a checkout, "
			"or reinstall provium", tried);
}

const char *layout_rootfs(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("PROVIUM_ROOTFS");
	if (env && *env)
		return env;
	/* build/provium -> build/rootfs; build/tests/unit/x -> build/rootfs;
	 * PREFIX/bin/provium -> PREFIX/lib/provium/rootfs */
	static const char *const rel[] = {"rootfs", "../../rootfs", "../rootfs", "../lib/provium/rootfs"};
	const char *dir = layout_exe_dir();
	for (size_t i = 0; i < PV_ARRAY_SIZE(rel); i++) {
		char p[PATH_MAX];
		int n = snprintf(p, sizeof(p), "%s/%s", dir, rel[i]);
		if (n > 0 && (size_t)n < sizeof(p) && is_dir(p) && realpath(p, buf))
			return buf;
	}
	env = getenv("PROVIUM_BUILD");
	if (env && *env) {
		int n = snprintf(buf, sizeof(buf), "%s/rootfs", env);
		if (n > 0 && (size_t)n < sizeof(buf) && is_dir(buf))
			return buf;
	}
	snprintf(buf, sizeof(buf), "%s/lib/provium/rootfs", PROVIUM_PREFIX);
	return is_dir(buf) ? buf : NULL;
}

static bool has_build_sh(const char *kdir)
{
	char p[PATH_MAX + 16];
	int n = snprintf(p, sizeof(p), "%s/build.sh", kdir);
	return n > 0 && (size_t)n < sizeof(p) && is_exec(p);
}

int layout_kernels_dir(char *out, size_t len, bool *installed)
{
	const char *src = getenv("PROVIUM_SOURCE_DIR");
	*installed = false;
	if (src && *src) {
		snprintf(out, len, "%s/kernels", src);
		if (!has_build_sh(out))
			return pv_error(ENOENT, "PROVIUM_SOURCE_DIR=%s has no kernels/build.sh", src);
		return 0;
	}
	/* An install first (a checkout has no share/provium), then the checkout this
	 * binary was built in: build/provium, build/tests/unit/x are 1 to 3 levels down. */
	static const char *const rel[] = {"../share/provium/kernels", "../kernels", "../../kernels",
					  "../../../kernels"};
	int i = find(out, len, rel, PV_ARRAY_SIZE(rel), "share/provium/kernels", has_build_sh, NULL, 0);
	if (i >= 0) {
		*installed = i == 0 || i == (int)PV_ARRAY_SIZE(rel);
		return 0;
	}
	return pv_error(ENOENT, "no kernels/build.sh: not a provium checkout, and nothing "
			"installed in %s/share/provium/kernels or next to %s (reinstall provium)",
			PROVIUM_PREFIX, layout_exe_dir());
}
