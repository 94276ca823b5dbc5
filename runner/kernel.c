/* kernel.c — finds the guest kernel and initramfs in the cache and runs
 * kernels/build.sh when they are missing (runner/kernel.h, docs/kernels.md). */
#include "runner/kernel.h"
#include "runner/layout.h"
#include "vmm/arch.h"

#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int copy_path(char *out, size_t len, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int copy_path(char *out, size_t len, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return pv_error(ENAMETOOLONG, "%s: path too long", what);
	return 0;
}

int kernel_cache_dir(char *out, size_t len)
{
	const char *dir = getenv("PROVIUM_CACHE_DIR");
	if (dir && *dir)
		return copy_path(out, len, "PROVIUM_CACHE_DIR", "%s", dir);
	dir = getenv("XDG_CACHE_HOME");
	if (dir && *dir)
		return copy_path(out, len, "XDG_CACHE_HOME", "%s/provium", dir);
	dir = getenv("HOME");
	if (!dir || !*dir)
		return pv_error(ENOENT, "no cache directory: set PROVIUM_CACHE_DIR (HOME is unset)");
	return copy_path(out, len, "HOME", "%s/.cache/provium", dir);
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* resolve LINK (a file under the cache) to its real path in OUT. */
static int resolve(const char *link, char *out, size_t len, const char *missing_msg)
{
	char real[PATH_MAX];
	if (!realpath(link, real) || !is_file(real))
		return pv_error(ENOENT, "%s", missing_msg);
	return copy_path(out, len, link, "%s", real);
}

int kernel_cached_paths(bool pvm, char *vmlinux, char *bzimage, char *initrd, size_t len)
{
	char cache[PATH_MAX], link[PATH_MAX + 128];
	int rc = kernel_cache_dir(cache, sizeof(cache));
	if (rc < 0)
		return rc;
	/* this build's architecture's links (kernels/build.sh --arch): current,
	 * current-pvm, current-arm64; the kernel the kvm backend boots, and the
	 * compressed boot image (arch_layout) */
	char cur[64];
	snprintf(cur, sizeof(cur), "%s%s", pvm ? "current-pvm" : "current", arch_layout.cache_suffix);
	char msg[PATH_MAX + 200];
	snprintf(msg, sizeof(msg), "guest kernel%s not built (nothing in %s/kernel/%s): run `%s`",
		 pvm ? " (PVM variant)" : "", cache, cur,
		 pvm ? KERNEL_BUILD_CMD " --pvm" : KERNEL_BUILD_CMD);
	if (vmlinux) {
		snprintf(link, sizeof(link), "%s/kernel/%s/%s", cache, cur, arch_layout.kernel_file);
		if ((rc = resolve(link, vmlinux, len, msg)) < 0)
			return rc;
	}
	if (bzimage) {
		snprintf(link, sizeof(link), "%s/kernel/%s/%s", cache, cur, arch_layout.boot_image);
		if ((rc = resolve(link, bzimage, len, msg)) < 0)
			return rc;
	}
	if (initrd) {
		snprintf(msg, sizeof(msg), "initramfs not built (nothing at %s/initramfs/current%s.cpio): run `%s`",
			 cache, arch_layout.cache_suffix, KERNEL_BUILD_CMD);
		snprintf(link, sizeof(link), "%s/initramfs/current%s.cpio", cache, arch_layout.cache_suffix);
		if ((rc = resolve(link, initrd, len, msg)) < 0)
			return rc;
	}
	return 0;
}

int kernel_paths(char *vmlinux, char *initrd, size_t len)
{
	const char *k = getenv("PROVIUM_KERNEL"), *i = getenv("PROVIUM_INITRD");
	int rc;
	if (k && *k) {
		if (!is_file(k))
			return pv_error(ENOENT, "PROVIUM_KERNEL=%s: no such file", k);
		if ((rc = copy_path(vmlinux, len, "PROVIUM_KERNEL", "%s", k)) < 0)
			return rc;
	} else if ((rc = kernel_cached_paths(false, vmlinux, NULL, NULL, len)) < 0) {
		return rc;
	}
	if (i && *i) {
		if (!is_file(i))
			return pv_error(ENOENT, "PROVIUM_INITRD=%s: no such file", i);
		return copy_path(initrd, len, "PROVIUM_INITRD", "%s", i);
	}
	return kernel_cached_paths(false, NULL, NULL, initrd, len);
}

int kernel_build_script(char *out, size_t len)
{
	char dir[PATH_MAX];
	bool installed;
	int rc = layout_kernels_dir(dir, sizeof(dir), &installed);
	if (rc < 0)
		return rc;
	/* build.sh hashes the agent into the initramfs and packs it: the one this
	 * binary ships with (build/provium-agent, or PREFIX/lib/provium's). */
	char agent[PATH_MAX];
	if (!getenv("PROVIUM_AGENT") && layout_agent(agent, sizeof(agent)) == 0)
		setenv("PROVIUM_AGENT", agent, 1);
	pv_error_clear();
	return copy_path(out, len, "build script", "%s/build.sh", dir);
}

/* run_script SCRIPT ARG...: stdout goes to stderr (or /dev/null when quiet) so the
 * progress is visible without mixing into a command's own stdout. */
static int run_script(bool quiet, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	} else {
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	}
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return pv_error(rc, "cannot run %s: %s", argv[0], strerror(rc));
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return pv_error(errno, "waiting for %s: %s", argv[0], strerror(errno));
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return pv_error(EIO, "%s exited with status %d", argv[0], WEXITSTATUS(status));
	return pv_error(EINTR, "%s killed by signal %d", argv[0], WTERMSIG(status));
}

int kernel_build(bool pvm)
{
	char script[PATH_MAX];
	int rc = kernel_build_script(script, sizeof(script));
	if (rc < 0)
		return pv_error_prefix(-rc, "cannot build the guest kernel");
	char *argv[] = {script, "--arch", (char *)arch_layout.name, pvm ? "--pvm" : NULL, NULL};
	rc = run_script(false, argv);
	if (rc < 0)
		return pv_error_prefix(-rc, "guest kernel build failed (the log's tail is above)");
	return 0;
}

int kernel_ensure(bool build_if_missing)
{
	char script[PATH_MAX], k[PATH_MAX], i[PATH_MAX];
	const char *env = getenv("PROVIUM_KERNEL");

	if (env && *env)
		return kernel_paths(k, i, sizeof(k));
	if (kernel_build_script(script, sizeof(script)) < 0) {
		/* No build scripts anywhere: use whatever the cache holds. */
		int rc = kernel_paths(k, i, sizeof(k));
		if (rc < 0)
			return pv_error_prefix(-rc, "no guest kernel, and no kernels/build.sh to build "
						    "one (reinstall provium, or set PROVIUM_KERNEL and PROVIUM_INITRD)");
		return 0;
	}
	char *check[] = {script, "--paths", "--arch", (char *)arch_layout.name, NULL};
	pv_error_clear();
	if (run_script(true, check) == 0 && kernel_paths(k, i, sizeof(k)) == 0)
		return 0;
	if (!build_if_missing)
		return pv_error(ENOENT, "guest kernel or initramfs not built or out of date: run `%s`",
				KERNEL_BUILD_CMD);
	pv_log("the guest kernel or initramfs is missing or out of date; building it now "
	       "(`%s`, about 4 minutes the first time)", KERNEL_BUILD_CMD);
	int rc = kernel_build(false);
	if (rc < 0)
		return rc;
	return kernel_paths(k, i, sizeof(k));
}
