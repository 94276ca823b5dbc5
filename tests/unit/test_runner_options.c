/* test_runner_options.c — `provium run` flags and environment (flags win, bad values
 * are usage errors), discovery (*_test.lua / test_*.lua, recursive, sorted), --shard
 * slices whose union is exactly the selection, --shuffle determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "runner/discover.h"
#include "runner/options.h"
#include "runner/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(struct run_opts *o, int argc, const char **argv)
{
	return opts_parse(o, argc, (char **)argv);
}

static void test_flags_win_over_environment(void **state)
{
	(void)state;
	struct run_opts o;
	setenv("PROVIUM_JOBS", "3", 1);
	setenv("PROVIUM_TIMEOUT", "7.5", 1);
	setenv("PROVIUM_BACKEND", "sandbox", 1);
	setenv("PROVIUM_CACHE_DIR", "/tmp/pvcache", 1);
	const char *a1[] = {"run"};
	assert_int_equal(parse(&o, 1, a1), 0);
	assert_int_equal(o.jobs, 3);
	assert_true(o.timeout == 7.5 && o.timeout_set);
	assert_string_equal(o.backend, "sandbox");
	assert_string_equal(o.cache_dir, "/tmp/pvcache");
	opts_free(&o);
	const char *a2[] = {"run", "-j", "5", "--timeout", "2", "--backend", "auto", "--cache-dir",
			    "/x", "tests", "--tags", "a,b", "--shard", "2/3", "-q", "--seed", "9"};
	assert_int_equal(parse(&o, 17, a2), 0);
	assert_int_equal(o.jobs, 5);
	assert_true(o.timeout == 2);
	assert_string_equal(o.backend, "auto");
	assert_string_equal(o.cache_dir, "/x");
	assert_string_equal(o.tags[0], "a");
	assert_string_equal(o.tags[1], "b");
	assert_null(o.tags[2]);
	assert_int_equal(o.shard_k, 2);
	assert_int_equal(o.shard_n, 3);
	assert_int_equal(o.verbose, -1);
	assert_true(o.seed == 9 && o.seed_set);
	assert_int_equal(o.npaths, 1); /* flags after a PATH still parse */
	assert_string_equal(o.paths[0], "tests");
	opts_free(&o);
	unsetenv("PROVIUM_JOBS");
	unsetenv("PROVIUM_TIMEOUT");
	unsetenv("PROVIUM_BACKEND");
	unsetenv("PROVIUM_CACHE_DIR");
}

/* Every `run` flag of RUNNER.md, long spelling, lands in its field; the env vars
 * PROVIUM_EVENTS/KERNEL/INITRD too. */
static void test_every_long_flag_and_env(void **state)
{
	(void)state;
	struct run_opts o;
	setenv("PROVIUM_EVENTS", "/tmp/ev-env.mp", 1);
	setenv("PROVIUM_KERNEL", "/k/bzImage", 1);
	setenv("PROVIUM_INITRD", "/k/initrd", 1);
	const char *a1[] = {"run"};
	assert_int_equal(parse(&o, 1, a1), 0);
	assert_string_equal(o.events, "/tmp/ev-env.mp");
	assert_string_equal(o.kernel, "/k/bzImage");
	assert_string_equal(o.initrd, "/k/initrd");
	assert_false(o.keep || o.fail_fast || o.shuffle || o.no_color || o.slow);
	assert_int_equal(o.format, FMT_PRETTY);
	opts_free(&o);
	const char *a2[] = {"run", "--jobs", "4", "--filter", "boots", "--tags", "net",
			    "--exclude-tags", "slowish,flaky", "--slow", "--timeout", "1.5",
			    "--backend", "sandbox", "--events", "-", "--format", "junit",
			    "--junit", "/tmp/j.xml", "--keep", "--fail-fast", "--seed", "77",
			    "--shuffle", "--verbose", "--verbose", "--no-color", "--cache-dir", "/c",
			    "--shard", "1/2", "dir"};
	assert_int_equal(parse(&o, (int)(sizeof(a2) / sizeof(a2[0])), a2), 0);
	assert_int_equal(o.jobs, 4);
	assert_string_equal(o.filter, "boots");
	assert_string_equal(o.tags[0], "net");
	assert_string_equal(o.exclude_tags[0], "slowish");
	assert_string_equal(o.exclude_tags[1], "flaky");
	assert_null(o.exclude_tags[2]);
	assert_true(o.slow);
	assert_true(o.timeout == 1.5 && o.timeout_set);
	assert_string_equal(o.backend, "sandbox");
	assert_string_equal(o.events, "-"); /* the flag wins over PROVIUM_EVENTS */
	assert_int_equal(o.format, FMT_JUNIT);
	assert_string_equal(o.junit, "/tmp/j.xml");
	assert_true(o.keep && o.fail_fast && o.shuffle && o.no_color);
	assert_true(o.seed == 77 && o.seed_set);
	assert_int_equal(o.verbose, 2);
	assert_string_equal(o.cache_dir, "/c");
	assert_int_equal(o.shard_k, 1);
	assert_int_equal(o.shard_n, 2);
	assert_int_equal(o.npaths, 1);
	opts_free(&o);
	const char *a3[] = {"run", "--quiet", "--format", "json"};
	assert_int_equal(parse(&o, 4, a3), 0);
	assert_int_equal(o.verbose, -1);
	assert_int_equal(o.format, FMT_JSON);
	opts_free(&o);
	const char *a4[] = {"run", "--format", "tap"};
	assert_int_equal(parse(&o, 3, a4), 0);
	assert_int_equal(o.format, FMT_TAP);
	opts_free(&o);
	assert_false(o.interactive || o.pause_on_failure);
	/* the prompt has the terminal to itself: one file at a time whatever -j says */
	const char *a5[] = {"run", "-j", "4", "--interactive", "f_test.lua"};
	assert_int_equal(parse(&o, 5, a5), 0);
	assert_true(o.interactive && !o.pause_on_failure);
	assert_int_equal(o.jobs, 1);
	opts_free(&o);
	const char *a6[] = {"run", "--pause-on-failure", "--jobs", "3"};
	assert_int_equal(parse(&o, 4, a6), 0);
	assert_true(o.pause_on_failure && !o.interactive);
	assert_int_equal(o.jobs, 1);
	opts_free(&o);
	unsetenv("PROVIUM_EVENTS");
	unsetenv("PROVIUM_KERNEL");
	unsetenv("PROVIUM_INITRD");
}

static void test_bad_values_are_usage_errors(void **state)
{
	(void)state;
	struct run_opts o;
	const char *bad[][3] = {
		{"run", "--jobs", "x"}, {"run", "--shard", "4/3"}, {"run", "--shard", "0/2"},
		{"run", "--backend", "qemu"}, {"run", "--format", "xml"}, {"run", "--timeout", "-1"},
		{"run", "--nope", "1"}, {"run", "--seed", "-3"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(&o, 3, bad[i]), -EINVAL);
	const char *missing[] = {"run", "--jobs"};
	assert_int_equal(parse(&o, 2, missing), -EINVAL);
	setenv("PROVIUM_BACKEND", "vbox", 1);
	const char *plain[] = {"run"};
	assert_int_equal(parse(&o, 1, plain), -EINVAL);
	unsetenv("PROVIUM_BACKEND");
}

static char dir[] = "/tmp/provium-disc-XXXXXX";

static void touch(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void test_discovery_is_recursive_filtered_and_sorted(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	char p[512];
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/.hidden", dir);
	mkdir(p, 0755);
	touch("b_test.lua");
	touch("test_a.lua");
	touch("sub/c_test.lua");
	touch("helper.lua");
	touch("x_test.lua.bak");
	touch(".hidden/d_test.lua");
	touch("notes.txt");
	struct file_list fl;
	char *paths[] = {dir};
	assert_int_equal(discover_files(paths, 1, &fl), 0);
	assert_int_equal(fl.n, 3);
	char want[3][512];
	snprintf(want[0], 512, "%s/b_test.lua", dir);
	snprintf(want[1], 512, "%s/sub/c_test.lua", dir);
	snprintf(want[2], 512, "%s/test_a.lua", dir);
	for (int i = 0; i < 3; i++)
		assert_string_equal(fl.v[i], want[i]);
	discover_free(&fl);
	/* an explicit file runs whatever its name; duplicates collapse */
	char helper[512];
	snprintf(helper, sizeof(helper), "%s/helper.lua", dir);
	char *paths2[] = {helper, dir, helper};
	assert_int_equal(discover_files(paths2, 3, &fl), 0);
	assert_int_equal(fl.n, 4);
	discover_free(&fl);
	char *nope[] = {"/nonexistent/provium/path"};
	assert_int_equal(discover_files(nope, 1, &fl), -ENOENT);
	sched_rmtree(dir);
}

static void test_shards_partition_the_selection(void **state)
{
	(void)state;
	for (int n = 1; n <= 5; n++) {
		int seen[23] = {0};
		for (int k = 1; k <= n; k++) {
			struct file_list fl = {0};
			for (int i = 0; i < 23; i++) {
				char name[32];
				snprintf(name, sizeof(name), "f%02d_test.lua", i);
				fl.v = realloc(fl.v, (fl.n + 1) * sizeof(char *));
				fl.v[fl.n++] = strdup(name);
			}
			discover_shard(&fl, k, n);
			for (size_t i = 0; i < fl.n; i++)
				seen[atoi(fl.v[i] + 1)]++;
			assert_true(fl.n >= 23 / (size_t)n && fl.n <= 23 / (size_t)n + 1);
			discover_free(&fl);
		}
		for (int i = 0; i < 23; i++)
			assert_int_equal(seen[i], 1); /* every file in exactly one shard */
	}
}

static void test_shuffle_is_a_seeded_permutation(void **state)
{
	(void)state;
	char *a[10], *b[10];
	struct file_list x = {a, 10, 10}, y = {b, 10, 10};
	static char names[10][12];
	for (int i = 0; i < 10; i++) {
		snprintf(names[i], sizeof(names[i]), "%d", i);
		a[i] = b[i] = names[i];
	}
	discover_shuffle(&x, 1234);
	discover_shuffle(&y, 1234);
	int same_place = 0, sum = 0;
	for (int i = 0; i < 10; i++) {
		assert_ptr_equal(a[i], b[i]);
		same_place += a[i] == names[i];
		sum += atoi(a[i]);
	}
	assert_int_equal(sum, 45);
	assert_true(same_place < 10);
	discover_shuffle(&y, 99);
	int diff = 0;
	for (int i = 0; i < 10; i++)
		diff += a[i] != b[i];
	assert_true(diff > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_win_over_environment),
		cmocka_unit_test(test_every_long_flag_and_env),
		cmocka_unit_test(test_bad_values_are_usage_errors),
		cmocka_unit_test(test_discovery_is_recursive_filtered_and_sorted),
		cmocka_unit_test(test_shards_partition_the_selection),
		cmocka_unit_test(test_shuffle_is_a_seeded_permutation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
