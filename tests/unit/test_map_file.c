/* test_map_file.c — pv_map_file (vmm/util.c), which the kernel and initrd loaders
 * copy from: the mapping holds the file's bytes, an empty file maps to nothing, and a
 * missing file or a directory is refused naming the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/tmpdir_util.h"

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_maps_the_bytes(void **state)
{
	(void)state;
	char path[128];
	static unsigned char buf[3 * 4096 + 17];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7);
	snprintf(path, sizeof(path), "%s/image", dir);
	write_file(path, buf, sizeof(buf));
	const unsigned char *d = NULL;
	size_t len = 0;
	assert_int_equal(pv_map_file(path, &d, &len), 0);
	assert_int_equal(len, sizeof(buf));
	assert_memory_equal(d, buf, sizeof(buf));
	pv_unmap_file(d, len);
}

static void test_empty_file_maps_to_nothing(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, "", 0);
	const unsigned char *d = (const unsigned char *)"x";
	size_t len = 1;
	assert_int_equal(pv_map_file(path, &d, &len), 0);
	assert_null(d);
	assert_int_equal(len, 0);
	pv_unmap_file(d, len);
}

static void test_missing_and_directory_refused(void **state)
{
	(void)state;
	char path[128];
	const unsigned char *d;
	size_t len;
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(pv_map_file(path, &d, &len), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), path));
	assert_int_equal(pv_map_file(dir, &d, &len), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "not a regular file"));
}

static int group_setup(void **state)
{
	tmpdir_name = "map";
	return tmpdir_setup(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps_the_bytes),
		cmocka_unit_test(test_empty_file_maps_to_nothing),
		cmocka_unit_test(test_missing_and_directory_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, tmpdir_teardown);
}
