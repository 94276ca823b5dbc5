/* image.h — the arm64 Linux boot protocol (Documentation/arch/arm64/booting.rst):
 * the Image header, where the kernel, device tree and initrd go in guest RAM, and
 * loading them (vmm/arm64/image.c). Pure functions over a buffer standing for guest
 * RAM, so tests/unit/test_arm64_image.c runs them on any host.
 *
 * Layout from the start of RAM (ARM64_RAM_GPA, 2 MiB aligned):
 *   RAM + text_offset          the Image, image_size bytes (its BSS included)
 *   next 2 MiB boundary        the DTB (at most 2 MiB, in a 2 MiB block of its own)
 *   2 MiB after that           the initrd
 * The boot vCPU starts at the Image's first byte with x0 = the DTB, x1..x3 = 0, the
 * MMU off, interrupts masked, in EL1h. */
#ifndef PROVIUM_ARM64_IMAGE_H
#define PROVIUM_ARM64_IMAGE_H

#include "vmm/arm64/fdt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC        0x644d5241u  /* "ARM\x64", little-endian at 0x38 */
#define ARM64_IMAGE_MAGIC_OFF    0x38
#define ARM64_IMAGE_HDR_SIZE     64
#define ARM64_IMAGE_OLD_TEXT_OFF 0x80000ull   /* image_size 0: before Linux 3.17 */
#define ARM64_DTB_MAX            (2ull << 20)
#define ARM64_BOOT_ALIGN         (2ull << 20)

struct arm64_image {
	uint64_t text_offset;  /* from the 2 MiB-aligned base */
	uint64_t image_size;   /* bytes the kernel occupies, BSS included */
	uint64_t file_size;    /* bytes in the file */
};

/* Checks and decodes the header of an Image of `len` bytes (`path` for messages):
 * -ENOEXEC with a message for a short file, a gzip-compressed vmlinuz, an ELF
 * vmlinux, a missing magic or a big-endian kernel. */
int arm64_image_parse(const void *data, size_t len, const char *path, struct arm64_image *out);

struct arm64_layout {
	uint64_t kernel_gpa, kernel_end;
	uint64_t dtb_gpa;
	uint64_t initrd_gpa;   /* where an initrd goes (also with none) */
	uint64_t end;          /* first byte after the initrd */
};

/* Places an Image and an initrd of `initrd_size` bytes in RAM [ram_gpa,
 * ram_gpa + ram_size); -ENOMEM with a message saying how much RAM they need. */
int arm64_boot_layout(uint64_t ram_gpa, uint64_t ram_size, const struct arm64_image *img,
		      uint64_t initrd_size, struct arm64_layout *out);

struct arm64_boot_in {
	const char *kernel;     /* path of the raw Image */
	const char *initrd;     /* path or NULL */
	const char *cmdline;
	unsigned cpus;
	struct arm64_dt_dev uart;
	const struct arm64_dt_dev *virtio;
	unsigned nvirtio;
};

struct arm64_boot_info {
	uint64_t entry;         /* pc */
	uint64_t dtb;           /* x0 */
	uint64_t initrd_size;
	int dtb_size;
	struct arm64_layout layout;
};

/* Loads the Image, the initrd and the device tree describing `in` into `mem` (guest
 * RAM: `ram_size` bytes from guest-physical `ram_gpa`). 0 or -errno with a message
 * naming the file. */
int arm64_boot_load(void *mem, uint64_t ram_gpa, uint64_t ram_size,
		    const struct arm64_boot_in *in, struct arm64_boot_info *out);

#endif
