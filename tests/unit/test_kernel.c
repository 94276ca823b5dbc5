/* test_kernel.c — runner/kernel.c: cache directory resolution, finding the cached
 * kernel + initramfs through the current links, the environment overrides, and the
 * "not built: run ..." errors a newcomer sees. No kernel build is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/kernel.h"
#include "vmm/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/provium-test-kernel.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	unsetenv("PROVIUM_KERNEL");
	unsetenv("PROVIUM_INITRD");
	unsetenv("PROVIUM_SOURCE_DIR");
	setenv("PROVIUM_CACHE_DIR", tmpdir, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A cache laid out the way kernels/build.sh leaves it. */
static void fake_cache(void)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/kernel", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/kernel/0123abcd", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/kernel/0123abcd/vmlinux", tmpdir);
	put_file(p, "ELF");
	snprintf(p, sizeof(p), "%s/kernel/0123abcd/bzImage", tmpdir);
	put_file(p, "bz");
	snprintf(p, sizeof(p), "%s/kernel/current", tmpdir);
	assert_int_equal(symlink("0123abcd", p), 0);
	snprintf(p, sizeof(p), "%s/initramfs", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/initramfs/feed.cpio", tmpdir);
	put_file(p, "070701");
	snprintf(p, sizeof(p), "%s/initramfs/current.cpio", tmpdir);
	assert_int_equal(symlink("feed.cpio", p), 0);
}

static void test_cache_dir_resolution(void **state)
{
	(void)state;
	char out[PATH_MAX];
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	setenv("PROVIUM_CACHE_DIR", "/x/cache", 1);
	setenv("XDG_CACHE_HOME", "/x/xdg", 1);
	assert_int_equal(kernel_cache_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/x/cache");

	unsetenv("PROVIUM_CACHE_DIR");
	assert_int_equal(kernel_cache_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/x/xdg/provium");

	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/x/home", 1);
	assert_int_equal(kernel_cache_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/x/home/.cache/provium");

	unsetenv("HOME");
	assert_int_equal(kernel_cache_dir(out, sizeof(out)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "PROVIUM_CACHE_DIR"));

	char small[8];
	setenv("PROVIUM_CACHE_DIR", "/a/long/cache/dir", 1);
	assert_int_equal(kernel_cache_dir(small, sizeof(small)), -ENAMETOOLONG);

	if (home) {
		setenv("HOME", home, 1);
		free(home);
	}
	setenv("PROVIUM_CACHE_DIR", tmpdir, 1);
}

static void test_not_built_names_the_command(void **state)
{
	(void)state;
	char k[PATH_MAX], i[PATH_MAX];
	assert_int_equal(kernel_paths(k, i, sizeof(k)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "run `provium kernel build`"));

	assert_int_equal(kernel_cached_paths(true, k, NULL, NULL, sizeof(k)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "run `provium kernel build --pvm`"));

	/* kernel_ensure without building: the message is the exact command. */
	assert_int_equal(kernel_ensure(false), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "run `provium kernel build`"));
}

static void test_cached_paths_resolve_current_links(void **state)
{
	(void)state;
	char k[PATH_MAX], b[PATH_MAX], i[PATH_MAX], want[PATH_MAX + 64];
	fake_cache();
	assert_int_equal(kernel_paths(k, i, sizeof(k)), 0);
	snprintf(want, sizeof(want), "%s/kernel/0123abcd/vmlinux", tmpdir);
	assert_string_equal(k, want);
	snprintf(want, sizeof(want), "%s/initramfs/feed.cpio", tmpdir);
	assert_string_equal(i, want);

	assert_int_equal(kernel_cached_paths(false, NULL, b, NULL, sizeof(b)), 0);
	snprintf(want, sizeof(want), "%s/kernel/0123abcd/bzImage", tmpdir);
	assert_string_equal(b, want);

	/* A dangling current link is "not built", not a crash or a stale path. */
	snprintf(want, sizeof(want), "%s/kernel/0123abcd/vmlinux", tmpdir);
	unlink(want);
	assert_int_equal(kernel_paths(k, i, sizeof(k)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "provium kernel build"));

	char small[4];
	assert_int_equal(kernel_cached_paths(false, NULL, NULL, small, sizeof(small)), -ENAMETOOLONG);
}

static void test_env_overrides(void **state)
{
	(void)state;
	char k[PATH_MAX], i[PATH_MAX], kfile[PATH_MAX + 16], ifile[PATH_MAX + 16];
	snprintf(kfile, sizeof(kfile), "%s/myvmlinux", tmpdir);
	snprintf(ifile, sizeof(ifile), "%s/my.cpio", tmpdir);

	setenv("PROVIUM_KERNEL", kfile, 1);
	assert_int_equal(kernel_paths(k, i, sizeof(k)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "PROVIUM_KERNEL="));

	put_file(kfile, "ELF");
	put_file(ifile, "070701");
	setenv("PROVIUM_INITRD", ifile, 1);
	assert_int_equal(kernel_paths(k, i, sizeof(k)), 0);
	assert_string_equal(k, kfile);
	assert_string_equal(i, ifile);
	/* With both given, nothing needs building. */
	assert_int_equal(kernel_ensure(false), 0);

	setenv("PROVIUM_INITRD", "/nonexistent/initrd", 1);
	assert_int_equal(kernel_paths(k, i, sizeof(k)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "PROVIUM_INITRD=/nonexistent/initrd"));
	unsetenv("PROVIUM_KERNEL");
	unsetenv("PROVIUM_INITRD");
}

static void test_build_script_and_pvm_cmdline(void **state)
{
	(void)state;
	char script[PATH_MAX];
	/* The test binary lives in build/tests/unit/ of the checkout. */
	assert_int_equal(kernel_build_script(script, sizeof(script)), 0);
	size_t n = strlen(script);
	assert_true(n > strlen("/kernels/build.sh"));
	assert_string_equal(script + n - strlen("/kernels/build.sh"), "/kernels/build.sh");

	/* KERNEL_PVM_CMDLINE matches the first non-comment line of kernels/pvm-cmdline. */
	char path[PATH_MAX + 32], *text = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%.*s/pvm-cmdline", (int)(n - strlen("/build.sh")), script);
	assert_int_equal(pv_read_file(path, &text, &len), 0);
	char *line = strtok(text, "\n");
	while (line && line[0] == '#')
		line = strtok(NULL, "\n");
	assert_non_null(line);
	assert_string_equal(line, KERNEL_PVM_CMDLINE);
	free(text);

	setenv("PROVIUM_SOURCE_DIR", tmpdir, 1);
	assert_int_equal(kernel_build_script(script, sizeof(script)), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "PROVIUM_SOURCE_DIR"));
	unsetenv("PROVIUM_SOURCE_DIR");
}

/* kernel_ensure(true) on a cache that has the kernel but no initramfs packs one (a
 * second, through kernels/build.sh) and then kernel_paths finds both. Borrows the
 * real cache's kernel through a link, so it needs `make kernel` and the agent. */
static void test_ensure_builds_what_is_missing(void **state)
{
	(void)state;
	char script[PATH_MAX], cmd[PATH_MAX * 2], line[PATH_MAX + 32], kdir[PATH_MAX] = "";
	char agent[PATH_MAX + 32];
	assert_int_equal(kernel_build_script(script, sizeof(script)), 0);
	size_t n = strlen(script) - strlen("/kernels/build.sh");
	snprintf(agent, sizeof(agent), "%.*s/build/provium-agent", (int)n, script);
	if (access(agent, X_OK) != 0) {
		print_message("agent not built (%s): run make\n", agent);
		skip();
	}
	/* Where the real cache keeps the kernel (PROVIUM_CACHE_DIR points at tmpdir). */
	snprintf(cmd, sizeof(cmd), "env -u PROVIUM_CACHE_DIR '%s' --paths --no-initramfs 2>/dev/null", script);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (!strncmp(line, "vmlinux ", 8))
			sscanf(line, "vmlinux %4095s", kdir);
	int st = pclose(p);
	if (st != 0 || !kdir[0]) {
		print_message("guest kernel not built: run make kernel\n");
		skip();
	}
	*strrchr(kdir, '/') = 0;

	char link[PATH_MAX + 64];
	snprintf(link, sizeof(link), "%s/kernel", tmpdir);
	assert_int_equal(mkdir(link, 0755), 0);
	snprintf(link, sizeof(link), "%s/kernel/%s", tmpdir, strrchr(kdir, '/') + 1);
	assert_int_equal(symlink(kdir, link), 0);
	setenv("PROVIUM_AGENT", agent, 1);

	char k[PATH_MAX], i[PATH_MAX];
	assert_int_equal(kernel_ensure(false), -ENOENT);
	assert_int_equal(kernel_ensure(true), 0);
	assert_int_equal(kernel_paths(k, i, sizeof(k)), 0);
	assert_non_null(strstr(k, kdir));
	assert_int_equal(strncmp(i, tmpdir, strlen(tmpdir)), 0);
	struct stat sb;
	assert_int_equal(stat(i, &sb), 0);
	assert_true(sb.st_size > 1024 * 1024);
	/* Now current: nothing to do. */
	assert_int_equal(kernel_ensure(false), 0);
	unsetenv("PROVIUM_AGENT");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_dir_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_built_names_the_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_paths_resolve_current_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_script_and_pvm_cmdline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ensure_builds_what_is_missing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
