/* test_arm64_image.c — the arm64 boot protocol (vmm/arm64/image.c): the Image header
 * (magic, text_offset, image_size, the pre-3.17 header, big-endian and non-Image
 * files with messages that say what they are), the layout (kernel at the 2 MiB
 * base + text_offset, the DTB on the next 2 MiB boundary, the initrd 2 MiB after
 * it, too little RAM) and a whole load into a buffer standing for guest RAM, whose
 * device tree is decoded back. Runs on any host: nothing here needs KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/arm64/image.h"
#include "vmm/util.h"

#define MIB (1ull << 20)
#define RAM_SIZE (64 * MIB)

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A fake Image: branch, header fields, the magic, then `len` bytes of payload. */
static void make_image(uint8_t *buf, size_t len, uint64_t text_offset, uint64_t image_size,
		       uint64_t flags)
{
	memset(buf, 0, len);
	put_le(buf, 0x14000010, 4);                  /* b +64 */
	put_le(buf + 8, text_offset, 8);
	put_le(buf + 16, image_size, 8);
	put_le(buf + 24, flags, 8);
	put_le(buf + ARM64_IMAGE_MAGIC_OFF, ARM64_IMAGE_MAGIC, 4);
	for (size_t i = ARM64_IMAGE_HDR_SIZE; i < len; i++)
		buf[i] = (uint8_t)i;
}

static void test_parse(void **state)
{
	(void)state;
	uint8_t img[4096];
	struct arm64_image im;
	make_image(img, sizeof(img), 0, 3 * MIB, 2 << 1 /* 4K pages */);
	assert_int_equal(arm64_image_parse(img, sizeof(img), "Image", &im), 0);
	assert_int_equal(im.text_offset, 0);
	assert_int_equal(im.image_size, 3 * MIB);
	assert_int_equal(im.file_size, sizeof(img));

	/* Before 3.17: no size, the fixed 0x80000 offset, the file's length. */
	make_image(img, sizeof(img), 0, 0, 0);
	assert_int_equal(arm64_image_parse(img, sizeof(img), "old", &im), 0);
	assert_int_equal(im.text_offset, ARM64_IMAGE_OLD_TEXT_OFF);
	assert_int_equal(im.image_size, sizeof(img));

	/* image_size smaller than the file: the file wins. */
	make_image(img, sizeof(img), 0x80000, 100, 0);
	assert_int_equal(arm64_image_parse(img, sizeof(img), "small", &im), 0);
	assert_int_equal(im.image_size, sizeof(img));
}

static void expect_noexec(const void *data, size_t len, const char *want)
{
	struct arm64_image im;
	assert_int_equal(arm64_image_parse(data, len, "k", &im), -ENOEXEC);
	if (!strstr(pv_errmsg(), want))
		fail_msg("message \"%s\" lacks \"%s\"", pv_errmsg(), want);
}

static void test_parse_errors(void **state)
{
	(void)state;
	uint8_t img[256];
	make_image(img, sizeof(img), 0, MIB, 0);
	expect_noexec(img, 63, "truncated");
	static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0};
	expect_noexec(gz, sizeof(gz), "zcat k > Image");
	uint8_t elf[128] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	expect_noexec(elf, sizeof(elf), "ELF vmlinux");
	uint8_t junk[128] = {0};
	expect_noexec(junk, sizeof(junk), "magic at offset 0x38");
	make_image(img, sizeof(img), 0, MIB, 1);
	expect_noexec(img, sizeof(img), "big-endian");
	make_image(img, sizeof(img), 0x123, MIB, 0);
	expect_noexec(img, sizeof(img), "text_offset 0x123");
	make_image(img, sizeof(img), 2 * MIB, MIB, 0);
	expect_noexec(img, sizeof(img), "below 2 MiB");
}

static void test_layout(void **state)
{
	(void)state;
	struct arm64_image im = {.text_offset = 0x80000, .image_size = 5 * MIB + 1};
	struct arm64_layout l;
	assert_int_equal(arm64_boot_layout(ARM64_RAM_GPA, RAM_SIZE, &im, 3 * MIB, &l), 0);
	assert_int_equal(l.kernel_gpa, ARM64_RAM_GPA + 0x80000);
	assert_int_equal(l.kernel_end, ARM64_RAM_GPA + 0x80000 + 5 * MIB + 1);
	assert_int_equal(l.dtb_gpa, ARM64_RAM_GPA + 6 * MIB);   /* next 2 MiB boundary */
	assert_int_equal(l.dtb_gpa % ARM64_BOOT_ALIGN, 0);
	assert_int_equal(l.initrd_gpa, ARM64_RAM_GPA + 8 * MIB);
	assert_int_equal(l.end, ARM64_RAM_GPA + 11 * MIB);

	/* Exactly full is fine; one byte more is not, and the message says so. */
	assert_int_equal(arm64_boot_layout(ARM64_RAM_GPA, 11 * MIB, &im, 3 * MIB, &l), 0);
	assert_int_equal(arm64_boot_layout(ARM64_RAM_GPA, 11 * MIB, &im, 3 * MIB + 1, &l),
			 -ENOMEM);
	assert_non_null(strstr(pv_errmsg(), "need 12 MiB of RAM; the VM has 11 MiB"));
}

/* Removed by the group teardown, also when an assertion failed half-way. */
static char tmp_paths[2][32];
static unsigned ntmp;

static int remove_tmp(void **state)
{
	(void)state;
	for (unsigned i = 0; i < ntmp; i++)
		unlink(tmp_paths[i]);
	return 0;
}

static char *write_tmp(const void *data, size_t len)
{
	char *path = tmp_paths[ntmp++];
	snprintf(path, sizeof(tmp_paths[0]), "/tmp/pv-arm64-image-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static const char *prop_str(const void *fdt, const char *path, const char *name)
{
	int off = fdt_path_offset(fdt, path);
	assert_true(off >= 0);
	const char *s = fdt_getprop(fdt, off, name, NULL);
	assert_non_null(s);
	return s;
}

static uint64_t prop_u64(const void *fdt, const char *path, const char *name)
{
	int len, off = fdt_path_offset(fdt, path);
	assert_true(off >= 0);
	const fdt64_t *v = fdt_getprop(fdt, off, name, &len);
	assert_non_null(v);
	assert_int_equal(len, 8);
	return fdt64_ld(v);
}

static void test_load(void **state)
{
	(void)state;
	static uint8_t kernel[8192], initrd[5000];
	make_image(kernel, sizeof(kernel), 0x10000, 2 * MIB, 0);
	memset(initrd, 0xa5, sizeof(initrd));
	char *kp = write_tmp(kernel, sizeof(kernel)), *ip = write_tmp(initrd, sizeof(initrd));
	uint8_t *ram = malloc(RAM_SIZE);
	assert_non_null(ram);
	memset(ram, 0xee, RAM_SIZE);
	const struct arm64_dt_dev vdev = {ARM64_VIRTIO_GPA, 0x1000, 16};
	struct arm64_boot_in in = {
		.kernel = kp, .initrd = ip, .cmdline = "console=ttyS0", .cpus = 2,
		.uart = {ARM64_UART_GPA, ARM64_UART_SIZE, ARM64_UART_SPI},
		.virtio = &vdev, .nvirtio = 1,
	};
	struct arm64_boot_info bi;
	assert_int_equal(arm64_boot_load(ram, ARM64_RAM_GPA, RAM_SIZE, &in, &bi), 0);
	assert_int_equal(bi.entry, ARM64_RAM_GPA + 0x10000);
	assert_int_equal(bi.dtb, ARM64_RAM_GPA + 4 * MIB);
	/* The Image at its place, its BSS zeroed up to image_size. */
	assert_memory_equal(ram + 0x10000, kernel, sizeof(kernel));
	assert_int_equal(ram[0x10000 + sizeof(kernel)], 0);
	assert_int_equal(ram[0x10000 + 2 * MIB - 1], 0);
	assert_int_equal(ram[0x10000 + 2 * MIB], 0xee);
	/* The DTB describes this VM and points at the initrd, which is there. */
	const uint8_t *fdt = ram + (bi.dtb - ARM64_RAM_GPA);
	assert_int_equal(fdt_check_header(fdt), 0);
	assert_int_equal(fdt_totalsize(fdt), bi.dtb_size);
	assert_string_equal(prop_str(fdt, "/chosen", "bootargs"), "console=ttyS0");
	uint64_t start = prop_u64(fdt, "/chosen", "linux,initrd-start");
	assert_int_equal(start, bi.layout.initrd_gpa);
	assert_int_equal(prop_u64(fdt, "/chosen", "linux,initrd-end"), start + sizeof(initrd));
	assert_memory_equal(ram + (start - ARM64_RAM_GPA), initrd, sizeof(initrd));
	assert_string_equal(prop_str(fdt, "/virtio_mmio@a000000", "compatible"), "virtio,mmio");
	assert_true(fdt_path_offset(fdt, "/cpus/cpu@1") >= 0);

	/* A missing initrd names itself; no initrd means no initrd properties. */
	in.initrd = "/nonexistent/initrd";
	assert_int_equal(arm64_boot_load(ram, ARM64_RAM_GPA, RAM_SIZE, &in, &bi), -ENOENT);
	assert_non_null(strstr(pv_errmsg(), "initrd /nonexistent/initrd: not found"));
	in.initrd = NULL;
	assert_int_equal(arm64_boot_load(ram, ARM64_RAM_GPA, RAM_SIZE, &in, &bi), 0);
	int off = fdt_path_offset(ram + (bi.dtb - ARM64_RAM_GPA), "/chosen");
	assert_null(fdt_getprop(ram + (bi.dtb - ARM64_RAM_GPA), off, "linux,initrd-start", NULL));
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, remove_tmp);
}
