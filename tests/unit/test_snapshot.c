/* test_snapshot.c — the snapshot file format without KVM (vmm/snapshot_file.c):
 * state files round-trip; a flipped byte, a truncation, another format version or
 * a bad magic is refused with a message naming the file and the problem; the CRC
 * is zlib's CRC-32; guest memory is written sparse (holes stay holes) and private
 * mappings save the pages the guest changed; copies keep holes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/snapshot.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/tmpdir_util.h"

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void test_crc32_is_zlibs(void **state)
{
	(void)state;
	/* The standard check value of CRC-32/ISO-HDLC. */
	assert_int_equal(snapshot_crc32(0, "123456789", 9), 0xcbf43926);
	/* Chained = at once. */
	uint32_t c = snapshot_crc32(0, "12345", 5);
	assert_int_equal(snapshot_crc32(c, "6789", 4), 0xcbf43926);
}

static void write_state(const char *name, char *p, size_t plen)
{
	static const char st[] = "\x82\xa1" "a\x01\xa1" "b\xc4\x03xyz"; /* {a:1, b:bin} */
	path_of(p, plen, name);
	assert_int_equal(snapshot_state_write(p, st, sizeof(st) - 1), 0);
}

static void test_roundtrip(void **state)
{
	char p[128];
	void *data;
	size_t len;
	(void)state;
	write_state("ok.state", p, sizeof(p));
	assert_int_equal(snapshot_state_read(p, &data, &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(data, "\x82\xa1" "a\x01\xa1" "b\xc4\x03xyz", 11);
	free(data);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, SNAPSHOT_HEADER_SIZE + 11 + 4);
	char tmp[140];
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	assert_int_equal(access(tmp, F_OK), -1); /* written through a rename */
}

static void mangle(const char *name, long off, int byte, long trunc, char *p, size_t plen)
{
	write_state(name, p, plen);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	if (byte >= 0) {
		unsigned char b = (unsigned char)byte;
		if (off < 0) {
			assert_int_equal(pread(fd, &b, 1, -off), 1);
			b ^= 0x01;
			off = -off;
		}
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
	}
	if (trunc >= 0)
		assert_int_equal(ftruncate(fd, trunc), 0);
	close(fd);
}

static void expect_refused(const char *p, const char *why)
{
	void *data = NULL;
	size_t len;
	assert_int_equal(snapshot_state_read(p, &data, &len), -EINVAL);
	assert_null(data);
	const char *m = pv_errmsg();
	if (!strstr(m, p) || !strstr(m, why))
		fail_msg("message \"%s\" should name %s and say \"%s\"", m, p, why);
}

static void test_flipped_byte_refused(void **state)
{
	char p[128];
	(void)state;
	mangle("flip.state", -((long)SNAPSHOT_HEADER_SIZE + 5), 0, -1, p, sizeof(p));
	expect_refused(p, "CRC mismatch");
	mangle("flipcrc.state", -((long)SNAPSHOT_HEADER_SIZE + 11 + 2), 0, -1, p, sizeof(p));
	expect_refused(p, "CRC mismatch");
}

static void test_truncated_refused(void **state)
{
	char p[128];
	(void)state;
	mangle("short.state", 0, -1, SNAPSHOT_HEADER_SIZE + 6, p, sizeof(p));
	expect_refused(p, "truncated");
	mangle("tiny.state", 0, -1, 10, p, sizeof(p));
	expect_refused(p, "truncated");
	mangle("empty.state", 0, -1, 0, p, sizeof(p));
	expect_refused(p, "truncated");
}

static void test_other_version_refused(void **state)
{
	char p[128];
	(void)state;
	mangle("v2.state", 8, 2, -1, p, sizeof(p));
	expect_refused(p, "format version 2");
	mangle("magic.state", 0, 'Q', -1, p, sizeof(p));
	expect_refused(p, "bad magic");
}

static void test_missing_file_named(void **state)
{
	char p[128];
	void *data;
	size_t len;
	(void)state;
	path_of(p, sizeof(p), "nope.state");
	assert_true(snapshot_state_read(p, &data, &len) < 0);
	assert_non_null(strstr(pv_errmsg(), "nope.state"));
}

static uint64_t allocated(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_memory_sparse_from_memfd(void **state)
{
	char p[128];
	const uint64_t size = 64ull << 20;
	(void)state;
	int fd = memfd_create("t", 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	memset(m + (5ull << 20), 0xab, 8192);
	m[size - 1] = 0x5a;
	path_of(p, sizeof(p), "mem1");
	assert_int_equal(snapshot_memory_write(p, m, size, fd), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);
	assert_true(allocated(p) < (1ull << 20)); /* 64 MiB of RAM, a few pages written */
	int in = open(p, O_RDONLY);
	uint8_t *f = mmap(NULL, size, PROT_READ, MAP_PRIVATE, in, 0);
	assert_true(f != MAP_FAILED);
	assert_memory_equal(f, m, size);
	munmap(f, size);
	close(in);
	munmap(m, size);
	close(fd);
}

static void test_memory_private_saves_changed_pages(void **state)
{
	char src[128], dst[128];
	const uint64_t size = 16ull << 20;
	(void)state;
	/* A "snapshot memory file" with data in its first page ... */
	path_of(src, sizeof(src), "mem-src");
	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, "base", 4, 0), 4);
	/* ... mapped privately like a restored VM, which writes elsewhere. */
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	memcpy(m + (9ull << 20) + 100, "guest", 5);
	path_of(dst, sizeof(dst), "mem2");
	assert_int_equal(snapshot_memory_write(dst, m, size, fd), 0);
	char buf[8] = {0};
	assert_int_equal(pread(fd, buf, 5, (9 << 20) + 100), 5);
	assert_memory_equal(buf, "\0\0\0\0\0", 5);        /* the source was not written */
	int out = open(dst, O_RDONLY);
	assert_int_equal(pread(out, buf, 4, 0), 4);
	assert_memory_equal(buf, "base", 4);
	assert_int_equal(pread(out, buf, 5, (9 << 20) + 100), 5);
	assert_memory_equal(buf, "guest", 5);
	assert_true(allocated(dst) < (1ull << 20));
	close(out);
	munmap(m, size);
	close(fd);
}

static void test_memory_anonymous_saves_touched_pages(void **state)
{
	char p[128];
	const uint64_t size = 32ull << 20;
	(void)state;
	/* fresh guest RAM: anonymous, no backing file; only what was written is data */
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	madvise(m, size, MADV_NOHUGEPAGE); /* page-granular, so the size bound below holds */
	memcpy(m + (3ull << 20) + 7, "guest", 5);
	m[size - 1] = 0x5a;
	path_of(p, sizeof(p), "mem-anon");
	assert_int_equal(snapshot_memory_write(p, m, size, -1), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);
	assert_true(allocated(p) < (1ull << 20));
	int in = open(p, O_RDONLY);
	char buf[8] = {0};
	assert_int_equal(pread(in, buf, 5, (3 << 20) + 7), 5);
	assert_memory_equal(buf, "guest", 5);
	assert_int_equal(pread(in, buf, 1, (off_t)size - 1), 1);
	assert_int_equal((uint8_t)buf[0], 0x5a);
	close(in);
	munmap(m, size);
}

static void test_copy_keeps_holes(void **state)
{
	char a[128], b[128];
	(void)state;
	path_of(a, sizeof(a), "img");
	path_of(b, sizeof(b), "img-copy");
	int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(ftruncate(fd, 256 << 20), 0);
	assert_int_equal(pwrite(fd, "sector", 6, 100 << 20), 6);
	close(fd);
	assert_int_equal(snapshot_copy_file(a, b), 0);
	struct stat st;
	assert_int_equal(stat(b, &st), 0);
	assert_int_equal(st.st_size, 256 << 20);
	assert_true(allocated(b) < (4u << 20));
	char buf[8];
	fd = open(b, O_RDONLY);
	assert_int_equal(pread(fd, buf, 6, 100 << 20), 6);
	assert_memory_equal(buf, "sector", 6);
	close(fd);
	/* The copy is separate: writing it leaves the original alone. */
	fd = open(b, O_RDWR);
	assert_int_equal(pwrite(fd, "CHANGE", 6, 100 << 20), 6);
	close(fd);
	fd = open(a, O_RDONLY);
	assert_int_equal(pread(fd, buf, 6, 100 << 20), 6);
	assert_memory_equal(buf, "sector", 6);
	close(fd);
}

static int group_setup(void **state)
{
	tmpdir_name = "snapshot";
	return tmpdir_setup(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_is_zlibs),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_flipped_byte_refused),
		cmocka_unit_test(test_truncated_refused),
		cmocka_unit_test(test_other_version_refused),
		cmocka_unit_test(test_missing_file_named),
		cmocka_unit_test(test_memory_sparse_from_memfd),
		cmocka_unit_test(test_memory_private_saves_changed_pages),
		cmocka_unit_test(test_memory_anonymous_saves_touched_pages),
		cmocka_unit_test(test_copy_keeps_holes),
	};
	return cmocka_run_group_tests_name("snapshot", tests, group_setup, tmpdir_teardown);
}
