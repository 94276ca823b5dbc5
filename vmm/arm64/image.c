/* image.c — the arm64 Image loader (booting.rst): the header check, the layout of
 * kernel, DTB and initrd in RAM, and loading them with the device tree of
 * vmm/arm64/fdt.c. Works on a plain buffer standing for guest RAM, so its unit test
 * runs on x86 too. */
#include "vmm/arm64/image.h"
#include "vmm/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((uint64_t)1 << 20)

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Names what a file that is not a raw Image probably is, so the message says what
 * to do instead. */
static int not_an_image(const uint8_t *p, size_t len, const char *path)
{
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return pv_error(ENOEXEC, "kernel %s: a gzip-compressed kernel (vmlinuz); "
				"provium boots the raw Image: zcat %s > Image", path, path);
	if (len >= 4 && !memcmp(p, "\x7f" "ELF", 4))
		return pv_error(ENOEXEC, "kernel %s: an ELF vmlinux; arm64 guests boot the "
				"raw Image (arch/arm64/boot/Image)", path);
	return pv_error(ENOEXEC, "kernel %s: not an arm64 Image (no \"ARM\\x64\" magic at "
			"offset 0x38)", path);
}

int arm64_image_parse(const void *data, size_t len, const char *path, struct arm64_image *out)
{
	const uint8_t *p = data;
	if (len < ARM64_IMAGE_HDR_SIZE) {
		if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
			return not_an_image(p, len, path);
		return pv_error(ENOEXEC, "kernel %s: truncated (%zu bytes, an arm64 Image "
				"header is %d)", path, len, ARM64_IMAGE_HDR_SIZE);
	}
	if (get_le(p + ARM64_IMAGE_MAGIC_OFF, 4) != ARM64_IMAGE_MAGIC)
		return not_an_image(p, len, path);
	uint64_t text_offset = get_le(p + 8, 8), image_size = get_le(p + 16, 8);
	uint64_t flags = get_le(p + 24, 8);
	if (flags & 1)
		return pv_error(ENOEXEC, "kernel %s: a big-endian kernel; provium runs "
				"little-endian arm64 guests", path);
	if (image_size == 0) {
		/* Before 3.17 the header had no size: booting.rst's fixed offset. */
		text_offset = ARM64_IMAGE_OLD_TEXT_OFF;
		image_size = len;
	}
	if (text_offset % 4096 || text_offset >= ARM64_BOOT_ALIGN)
		return pv_error(ENOEXEC, "kernel %s: text_offset 0x%" PRIx64 " is not a "
				"page-aligned offset below 2 MiB", path, text_offset);
	out->text_offset = text_offset;
	out->image_size = image_size < len ? len : image_size;
	out->file_size = len;
	return 0;
}

int arm64_boot_layout(uint64_t ram_gpa, uint64_t ram_size, const struct arm64_image *img,
		      uint64_t initrd_size, struct arm64_layout *out)
{
	uint64_t base = PV_ALIGN_UP(ram_gpa, ARM64_BOOT_ALIGN);
	out->kernel_gpa = base + img->text_offset;
	out->kernel_end = out->kernel_gpa + img->image_size;
	/* The DTB is mapped with 2 MiB blocks: a block of its own after the kernel. */
	out->dtb_gpa = PV_ALIGN_UP(out->kernel_end, ARM64_BOOT_ALIGN);
	out->initrd_gpa = out->dtb_gpa + ARM64_DTB_MAX;
	out->end = out->initrd_gpa + initrd_size;
	if (out->end > ram_gpa + ram_size || out->end < ram_gpa)
		return pv_error(ENOMEM, "the kernel (%" PRIu64 " MiB with its BSS), device tree "
				"and initrd (%" PRIu64 " MiB) need %" PRIu64 " MiB of RAM; the VM "
				"has %" PRIu64 " MiB", img->image_size / MIB, initrd_size / MIB,
				(out->end - ram_gpa + MIB - 1) / MIB, ram_size / MIB);
	return 0;
}

static int read_file(const char *what, const char *path, const unsigned char **data,
		     size_t *len)
{
	int r = pv_map_file(path, data, len);
	if (r == -ENOENT)
		return pv_error(ENOENT, "%s %s: not found", what, path);
	if (r < 0)
		return pv_error(-r, "%s %s: cannot read: %s", what, path, strerror(-r));
	return 0;
}

static int load(uint8_t *mem, uint64_t ram_gpa, uint64_t ram_size,
		const struct arm64_boot_in *in, const unsigned char *kernel, size_t klen,
		const unsigned char *initrd, size_t ilen, struct arm64_boot_info *out)
{
	struct arm64_image img;
	struct arm64_layout *l = &out->layout;
	int err = arm64_image_parse(kernel, klen, in->kernel, &img);
	if (err)
		return err;
	if ((err = arm64_boot_layout(ram_gpa, ram_size, &img, ilen, l)))
		return err;
	memcpy(mem + (l->kernel_gpa - ram_gpa), kernel, klen);
	memset(mem + (l->kernel_gpa - ram_gpa) + klen, 0, img.image_size - klen);
	if (ilen)
		memcpy(mem + (l->initrd_gpa - ram_gpa), initrd, ilen);
	struct arm64_dt_in dt = {
		.cpus = in->cpus, .ram_gpa = ram_gpa, .ram_size = ram_size,
		.bootargs = in->cmdline, .initrd_gpa = l->initrd_gpa, .initrd_size = ilen,
		.uart = in->uart, .virtio = in->virtio, .nvirtio = in->nvirtio,
	};
	int n = arm64_dt_build(mem + (l->dtb_gpa - ram_gpa), ARM64_DTB_MAX, &dt);
	if (n < 0)
		return n;
	out->entry = l->kernel_gpa;
	out->dtb = l->dtb_gpa;
	out->dtb_size = n;
	out->initrd_size = ilen;
	return 0;
}

int arm64_boot_load(void *mem, uint64_t ram_gpa, uint64_t ram_size,
		    const struct arm64_boot_in *in, struct arm64_boot_info *out)
{
	const unsigned char *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	int err = read_file("kernel", in->kernel, &kernel, &klen);
	if (!err && in->initrd)
		err = read_file("initrd", in->initrd, &initrd, &ilen);
	if (!err)
		err = load(mem, ram_gpa, ram_size, in, kernel, klen, initrd, ilen, out);
	pv_unmap_file(kernel, klen);
	pv_unmap_file(initrd, ilen);
	return err;
}
