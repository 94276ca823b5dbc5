/* test_boot.c — the Linux boot-protocol loader (vmm/x86/boot.c) on a plain buffer:
 * the test guest ELF, synthetic ELF and bzImage images built here byte by byte, a
 * real bzImage when the host has one, every rejection boot_load promises, the e820
 * map, the command line, the initrd placement, the page tables and the GDT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/x86/boot.h"
#include "vmm/util.h"

#define MIB (1024ull * 1024)

struct guestmem {
	unsigned char *p;
	uint64_t size;
};

static struct guestmem mem_new(uint64_t size)
{
	struct guestmem m = { mmap(NULL, size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), size };

	assert_true(m.p != MAP_FAILED);
	return m;
}

static void mem_free(struct guestmem *m)
{
	munmap(m->p, m->size);
}

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/provium-test-boot.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes `len` bytes to a file in the temp dir and returns its path (static buffer
 * per name). */
static const char *put_file(const char *name, const void *data, size_t len)
{
	static char paths[8][128];
	static int next;
	char *path = paths[next++ % 8];
	FILE *f;

	snprintf(path, 128, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static struct boot_params *bp_of(struct guestmem *m)
{
	return (struct boot_params *)(m->p + BOOT_PARAMS_GPA);
}

/* ---- synthetic images ---- */

/* An ELF64 x86-64 image with one PT_LOAD of `payload` bytes at paddr/vaddr. */
static size_t make_elf(unsigned char *buf, uint64_t paddr, uint64_t vaddr, uint64_t entry,
		       size_t payload, uint64_t memsz)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(*eh));
	size_t off = 0x1000;

	memset(buf, 0, off + payload);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph->p_type = PT_LOAD;
	ph->p_offset = off;
	ph->p_paddr = paddr;
	ph->p_vaddr = vaddr;
	ph->p_filesz = payload;
	ph->p_memsz = memsz;
	for (size_t i = 0; i < payload; i++)
		buf[off + i] = (unsigned char)(i * 7 + 3);
	return off + payload;
}

struct bz_opts {
	uint16_t version;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t init_size;
	uint64_t pref_address;
};

#define BZ_SETUP_SECTS 2
#define BZ_PM_SIZE 0x3000

/* A minimal bzImage: boot sector + setup (setup_sects = 2), the setup header at
 * 0x1f1 with the jump at 0x200, and BZ_PM_SIZE bytes of "protected-mode kernel". */
static size_t make_bzimage(unsigned char *buf, const struct bz_opts *o)
{
	size_t setup = (BZ_SETUP_SECTS + 1) * 512;
	struct setup_header *h = (struct setup_header *)(buf + 0x1f1);

	memset(buf, 0, setup + BZ_PM_SIZE);
	h->setup_sects = BZ_SETUP_SECTS;
	h->boot_flag = 0xaa55;
	h->jump = 0x66eb;                 /* jmp to 0x268: the header's end */
	h->header = 0x53726448;
	h->version = o->version;
	h->relocatable_kernel = o->relocatable;
	h->xloadflags = o->xloadflags;
	h->cmdline_size = o->cmdline_size;
	h->initrd_addr_max = o->initrd_addr_max;
	h->init_size = o->init_size;
	h->pref_address = o->pref_address;
	h->kernel_alignment = 0x200000;
	for (size_t i = 0; i < BZ_PM_SIZE; i++)
		buf[setup + i] = (unsigned char)(i * 13 + 1);
	return setup + BZ_PM_SIZE;
}

static const struct bz_opts bz_default = {
	.version = 0x020f, .relocatable = 1, .xloadflags = XLF_KERNEL_64,
	.cmdline_size = 255, .initrd_addr_max = 0x7fffffff, .init_size = 0x10000,
	.pref_address = 0x400000,
};

/* The build tree this binary lives in (<build>/tests/unit/test_boot), else
 * $PROVIUM_BUILD, else "build": where the test guest ELF is. */
static const char *build_dir(void)
{
	static char dir[512];
	const char *b = getenv("PROVIUM_BUILD");
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	char *p;

	if (n > 0) {
		dir[n] = 0;
		p = strstr(dir, "/tests/unit/");
		if (p) {
			*p = 0;
			return dir;
		}
	}
	return b && *b ? b : "build";
}

/* ---- checks shared by the good-image tests ---- */

static void check_common(struct guestmem *m, const struct boot_info *bi, const char *cmdline)
{
	struct boot_params *bp = bp_of(m);
	uint64_t *pml4 = (uint64_t *)(m->p + bi->pml4);
	uint64_t *gdt = (uint64_t *)(m->p + bi->gdt_base);

	assert_int_equal(bi->boot_params, BOOT_PARAMS_GPA);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_true(bp->hdr.version >= 0x020a);

	/* Command line at cmd_line_ptr, NUL-terminated. */
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_GPA);
	assert_string_equal((char *)m->p + bp->hdr.cmd_line_ptr, cmdline);

	/* e820: RAM below the MP table, the reserved hole, RAM from 1 MiB to the end. */
	assert_int_equal(bp->e820_entries, 3);
	assert_int_equal(bp->e820_table[0].addr, 0);
	assert_int_equal(bp->e820_table[0].size, 0x9fc00);
	assert_int_equal(bp->e820_table[0].type, BOOT_E820_RAM);
	assert_int_equal(bp->e820_table[1].addr, 0x9fc00);
	assert_int_equal(bp->e820_table[1].size, 0x100000 - 0x9fc00);
	assert_int_equal(bp->e820_table[1].type, BOOT_E820_RESERVED);
	assert_int_equal(bp->e820_table[2].addr, 0x100000);
	assert_int_equal(bp->e820_table[2].size, m->size - 0x100000);
	assert_int_equal(bp->e820_table[2].type, BOOT_E820_RAM);

	/* Identity map: 4 GiB of present, writable 2 MiB pages. */
	assert_int_equal(pml4[0] & ~0xfffull, BOOT_PDPT_GPA);
	assert_int_equal(pml4[0] & 3, 3);
	assert_int_equal(pml4[1], 0);
	for (unsigned g = 0; g < 4; g++) {
		uint64_t *pdpt = (uint64_t *)(m->p + BOOT_PDPT_GPA);
		uint64_t *pd = (uint64_t *)(m->p + (pdpt[g] & ~0xfffull));

		assert_int_equal(pdpt[g] & 3, 3);
		for (unsigned j = 0; j < 512; j += 37)
			assert_int_equal(pd[j], ((uint64_t)g << 30) + ((uint64_t)j << 21) + 0x83);
		assert_int_equal(pd[511], ((uint64_t)g << 30) + (511ull << 21) + 0x83);
	}

	/* GDT: flat 64-bit code at cs, writable data at ds. */
	assert_int_equal(bi->cs, 0x10);
	assert_int_equal(bi->ds, 0x18);
	assert_true(bi->gdt_limit >= 0x1f);
	assert_int_equal(gdt[0], 0);
	assert_true(gdt[bi->cs / 8] & (1ull << 53));          /* L: long mode */
	assert_true(gdt[bi->cs / 8] & (1ull << 47));          /* present */
	assert_int_equal((gdt[bi->cs / 8] >> 43) & 1, 1);     /* code */
	assert_int_equal((gdt[bi->ds / 8] >> 43) & 1, 0);     /* data */
	assert_true(gdt[bi->ds / 8] & (1ull << 41));          /* writable */

	assert_true(bi->stack > BOOT_CMDLINE_GPA + BOOT_CMDLINE_MAX && bi->stack <= BOOT_MPTABLE_GPA);
	assert_int_equal(bi->stack & 15, 0);
}

static void expect_fail_size(struct guestmem *m, uint64_t size, const struct boot_params_in *in);

/* ---- good images ---- */

static void test_guest_elf(void **state)
{
	char path[1024];
	struct guestmem m = mem_new(64 * MIB);
	struct boot_params_in in = { .kernel = path, .cmdline = "exit=7 console=ttyS0" };
	struct boot_info bi;
	char *data;
	size_t len;
	const Elf64_Ehdr *eh;

	(void)state;
	snprintf(path, sizeof(path), "%s/guest/exit.elf", build_dir());
	if (access(path, R_OK) != 0)
		fail_msg("%s is missing: `make guest` builds it (make test does)", path);
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
	assert_int_equal(pv_read_file(path, &data, &len), 0);
	eh = (const Elf64_Ehdr *)data;
	assert_int_equal(bi.is_elf, 1);
	assert_int_equal(bi.entry, eh->e_entry);
	assert_true(bi.entry >= 0x100000 && bi.entry < bi.kernel_end);
	/* Every PT_LOAD's file bytes are at its physical address, the rest zero. */
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff) + i;

		if (ph->p_type != PT_LOAD)
			continue;
		assert_memory_equal(m.p + ph->p_paddr, data + ph->p_offset, ph->p_filesz);
		for (uint64_t b = ph->p_filesz; b < ph->p_memsz; b++)
			assert_int_equal(m.p[ph->p_paddr + b], 0);
		assert_true(ph->p_paddr + ph->p_memsz <= bi.kernel_end);
	}
	check_common(&m, &bi, in.cmdline);
	free(data);
	mem_free(&m);
}

static void test_elf_virtual_entry(void **state)
{
	static unsigned char buf[0x1000 + 0x2000];
	struct guestmem m = mem_new(64 * MIB);
	struct boot_params_in in = { .cmdline = "" };
	struct boot_info bi;
	size_t n;

	(void)state;
	/* Like a vmlinux whose e_entry is virtual: vaddr 0xffffffff81000000 at 16 MiB. */
	n = make_elf(buf, 0x1000000, 0xffffffff81000000ull, 0xffffffff81000040ull, 0x2000, 0x5000);
	in.kernel = put_file("virt.elf", buf, n);
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
	assert_int_equal(bi.entry, 0x1000040);
	assert_int_equal(bi.kernel_end, 0x1005000);
	assert_memory_equal(m.p + 0x1000000, buf + 0x1000, 0x2000);
	assert_int_equal(bi.initrd_size, 0);
	check_common(&m, &bi, "");
	mem_free(&m);
}

static void test_bzimage_synthetic(void **state)
{
	static unsigned char buf[8192 + BZ_PM_SIZE], rd[10000];
	struct guestmem m = mem_new(64 * MIB);
	struct boot_params_in in = { .cmdline = "console=ttyS0 root=/dev/vda" };
	struct boot_info bi;
	struct boot_params *bp = bp_of(&m);
	size_t n, setup = (BZ_SETUP_SECTS + 1) * 512;

	(void)state;
	n = make_bzimage(buf, &bz_default);
	in.kernel = put_file("bz", buf, n);
	memset(rd, 0x5a, sizeof(rd));
	in.initrd = put_file("initrd", rd, sizeof(rd));
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);

	assert_int_equal(bi.is_elf, 0);
	assert_int_equal(bi.protocol, 0x020f);
	assert_int_equal(bi.entry, 0x100000 + 0x200);
	assert_memory_equal(m.p + 0x100000, buf + setup, BZ_PM_SIZE);
	/* The kernel is extracted at pref_address and needs init_size there. */
	assert_int_equal(bi.kernel_end, 0x400000 + 0x10000);
	/* The setup header was copied, then filled in. */
	assert_int_equal(bp->hdr.setup_sects, BZ_SETUP_SECTS);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.cmdline_size, 255);
	assert_int_equal(bp->hdr.init_size, 0x10000);
	assert_int_equal(bp->hdr.pref_address, 0x400000);
	assert_int_equal(bp->hdr.code32_start, 0x100000);
	assert_true(bp->hdr.loadflags & CAN_USE_HEAP);
	/* initrd at the top of RAM, 4 KiB aligned. */
	assert_int_equal(bi.initrd_size, sizeof(rd));
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(rd));
	assert_int_equal(bp->hdr.ramdisk_image, bi.initrd_addr);
	assert_int_equal(bi.initrd_addr & 0xfff, 0);
	assert_true(bi.initrd_addr + sizeof(rd) <= m.size);
	assert_true(m.size - (bi.initrd_addr + sizeof(rd)) < 4096);
	assert_memory_equal(m.p + bi.initrd_addr, rd, sizeof(rd));
	check_common(&m, &bi, in.cmdline);
	mem_free(&m);
}

/* A kernel that is not relocatable must go to pref_address. */
static void test_bzimage_not_relocatable(void **state)
{
	static unsigned char buf[8192 + BZ_PM_SIZE];
	struct guestmem m = mem_new(64 * MIB);
	struct bz_opts o = bz_default;
	struct boot_params_in in = { 0 };
	struct boot_info bi;

	(void)state;
	o.relocatable = 0;
	in.kernel = put_file("bz-fixed", buf, make_bzimage(buf, &o));
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
	assert_int_equal(bi.entry, 0x400000 + 0x200);
	assert_int_equal(bp_of(&m)->hdr.code32_start, 0x400000);
	assert_memory_equal(m.p + 0x400000, buf + (BZ_SETUP_SECTS + 1) * 512, BZ_PM_SIZE);
	mem_free(&m);
}

/* initrd_addr_max below the end of RAM caps where the initrd goes. */
static void test_initrd_below_addr_max(void **state)
{
	static unsigned char buf[8192 + BZ_PM_SIZE], rd[5000];
	struct guestmem m = mem_new(1024 * MIB);
	struct bz_opts o = bz_default;
	struct boot_params_in in = { 0 };
	struct boot_info bi;

	(void)state;
	o.initrd_addr_max = 0x1fffffff;
	in.kernel = put_file("bz-max", buf, make_bzimage(buf, &o));
	in.initrd = put_file("rd-small", rd, sizeof(rd));
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
	assert_true(bi.initrd_addr + sizeof(rd) <= 0x20000000);
	assert_true(bi.initrd_addr >= 0x20000000 - 0x3000);
	assert_int_equal(bi.initrd_addr & 0xfff, 0);
	assert_int_equal(bp_of(&m)->e820_table[2].size, 1024 * MIB - 0x100000);
	mem_free(&m);
}

/* An ELF vmlinux has no header of its own: its initrd stays below the 2 GiB
 * initrd_addr_max the loader assumes, even with 3 GiB of RAM (the most we take). */
static void test_elf_initrd_large_ram(void **state)
{
	static unsigned char buf[0x1000 + 0x2000], rd[3000];
	struct guestmem m = mem_new(BOOT_MAX_RAM);
	struct boot_params_in in = { .cmdline = "x" };
	struct boot_info bi;

	(void)state;
	in.kernel = put_file("elf-rd", buf, make_elf(buf, 0x100000, 0x100000, 0x100000, 0x2000, 0x2000));
	in.initrd = put_file("rd-elf", rd, sizeof(rd));
	assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
	assert_true(bi.initrd_addr + sizeof(rd) <= 0x80000000ull);
	assert_true(bi.initrd_addr >= 0x80000000ull - 0x2000);
	assert_int_equal(bp_of(&m)->hdr.ramdisk_image, bi.initrd_addr);
	assert_int_equal(bp_of(&m)->e820_table[2].size, BOOT_MAX_RAM - 0x100000);
	/* One byte more RAM than that is refused. */
	expect_fail_size(&m, BOOT_MAX_RAM + 4096, &in);
	mem_free(&m);
}

/* Finds a real kernel file `name` (bzImage or vmlinux) that `make kernel` left in the
 * cache (kernels/build.sh: $CACHE/kernel/current{,-pvm}/), or NULL. */
static const char *cached_kernel(const char *name)
{
	static char path[1024];
	const char *env = getenv("PROVIUM_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	const char *links[] = {"current", "current-pvm"};
	char cache[768];

	if (env && *env)
		snprintf(cache, sizeof(cache), "%s", env);
	else if (xdg && *xdg)
		snprintf(cache, sizeof(cache), "%s/provium", xdg);
	else
		snprintf(cache, sizeof(cache), "%s/.cache/provium", home ? home : "/root");
	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/kernel/%s/%s", cache, links[i], name);
		if (access(path, R_OK) == 0)
			return path;
	}
	return NULL;
}

/* A real bzImage: $PROVIUM_BZIMAGE, the host's /boot/vmlinuz*, or the one `make
 * kernel` built. */
static void test_bzimage_real(void **state)
{
	const char *env = getenv("PROVIUM_BZIMAGE"), *found;
	char path[1024] = "";
	glob_t g;
	struct guestmem m;
	struct boot_params_in in = { .cmdline = "console=ttyS0" };
	struct boot_info bi;
	char *data;
	size_t len;

	(void)state;
	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	else if (glob("/boot/vmlinuz*", 0, NULL, &g) == 0) {
		snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
		globfree(&g);
	} else if ((found = cached_kernel("bzImage")))
		snprintf(path, sizeof(path), "%s", found);
	if (!*path || access(path, R_OK) != 0) {
		printf("# no real bzImage on this host (no $PROVIUM_BZIMAGE, /boot/vmlinuz* or `make kernel` output)\n");
		skip();
	}
	printf("# real bzImage: %s\n", path);
	m = mem_new(256 * MIB);
	in.kernel = path;
	if (boot_load(m.p, m.size, &in, &bi) != 0)
		fail_msg("%s: %s", path, pv_errmsg());
	assert_int_equal(pv_read_file(path, &data, &len), 0);
	size_t setup = ((size_t)(data[0x1f1] ? (unsigned char)data[0x1f1] : 4) + 1) * 512;
	assert_int_equal(bi.is_elf, 0);
	assert_true(bi.protocol >= 0x020a);
	assert_int_equal(bi.entry, bp_of(&m)->hdr.code32_start + 0x200);
	assert_memory_equal(m.p + bp_of(&m)->hdr.code32_start, data + setup, len - setup);
	/* The kernel's own header survived the copy. */
	assert_memory_equal(&bp_of(&m)->hdr.setup_sects, data + 0x1f1, 1);
	assert_int_equal(bp_of(&m)->hdr.init_size, ((struct setup_header *)(data + 0x1f1))->init_size);
	check_common(&m, &bi, in.cmdline);
	free(data);
	mem_free(&m);
}

/* A real ELF vmlinux from `make kernel`: e_entry is physical (phys_startup_64). */
static void test_vmlinux_real(void **state)
{
	const char *env = getenv("PROVIUM_VMLINUX");
	const char *path = env && *env ? env : cached_kernel("vmlinux");
	struct guestmem m;
	struct boot_params_in in = { .cmdline = "console=ttyS0 noxsave" };
	struct boot_info bi;
	char *data;
	size_t len;
	const Elf64_Ehdr *eh;

	(void)state;
	if (!path || access(path, R_OK) != 0) {
		printf("# no real vmlinux on this host (no $PROVIUM_VMLINUX or `make kernel` output)\n");
		skip();
	}
	printf("# real vmlinux: %s\n", path);
	m = mem_new(256 * MIB);
	in.kernel = path;
	if (boot_load(m.p, m.size, &in, &bi) != 0)
		fail_msg("%s: %s", path, pv_errmsg());
	assert_int_equal(pv_read_file(path, &data, &len), 0);
	eh = (const Elf64_Ehdr *)data;
	assert_int_equal(bi.is_elf, 1);
	assert_true(bi.entry >= 0x100000 && bi.entry < 0x80000000);
	assert_true(bi.entry < bi.kernel_end);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff) + i;

		if (ph->p_type == PT_LOAD)
			assert_memory_equal(m.p + ph->p_paddr, data + ph->p_offset, ph->p_filesz);
	}
	check_common(&m, &bi, in.cmdline);
	free(data);
	mem_free(&m);
}

/* ---- bad images ---- */

static void expect_fail(struct guestmem *m, const struct boot_params_in *in, int err,
			const char *needle)
{
	struct boot_info bi;
	int r = boot_load(m->p, m->size, in, &bi);

	if (r != -err || !strstr(pv_errmsg(), needle))
		fail_msg("boot_load = %d (want %d), message \"%s\" (want \"%s\")",
			 r, -err, pv_errmsg(), needle);
}

static void test_bad_images(void **state)
{
	static unsigned char buf[0x1000 + 0x4000];
	struct guestmem m = mem_new(16 * MIB);
	struct boot_params_in in = { 0 };
	struct bz_opts o;
	size_t n;
	char line[400];

	(void)state;
	in.kernel = "/nonexistent/vmlinux";
	expect_fail(&m, &in, ENOENT, "not found");

	memset(buf, 0x41, 4096);
	in.kernel = put_file("junk", buf, 4096);
	expect_fail(&m, &in, ENOEXEC, "wrong magic");

	in.kernel = put_file("tiny", buf, 10);
	expect_fail(&m, &in, ENOEXEC, "truncated");

	/* ELF: headers cut off, segment cut off, wrong machine, entry outside. */
	n = make_elf(buf, 0x100000, 0x100000, 0x100000, 0x2000, 0x2000);
	in.kernel = put_file("elf-cut-hdr", buf, 40);
	expect_fail(&m, &in, ENOEXEC, "truncated");
	in.kernel = put_file("elf-cut-seg", buf, n - 1);
	expect_fail(&m, &in, ENOEXEC, "truncated");
	((Elf64_Ehdr *)buf)->e_machine = EM_AARCH64;
	in.kernel = put_file("elf-arm", buf, n);
	expect_fail(&m, &in, ENOEXEC, "not x86-64");
	n = make_elf(buf, 0x100000, 0x100000, 0x900000, 0x2000, 0x2000);
	in.kernel = put_file("elf-entry", buf, n);
	expect_fail(&m, &in, ENOEXEC, "entry point");

	/* ELF segment beyond the end of RAM, or below 1 MiB. */
	n = make_elf(buf, 15 * MIB, 15 * MIB, 15 * MIB, 0x2000, 2 * MIB);
	in.kernel = put_file("elf-big", buf, n);
	expect_fail(&m, &in, ENOMEM, "does not fit in guest RAM");
	n = make_elf(buf, 0x8000, 0x8000, 0x8000, 0x2000, 0x2000);
	in.kernel = put_file("elf-low", buf, n);
	expect_fail(&m, &in, ENOMEM, "does not fit in guest RAM");

	/* bzImage: too old, no 64-bit entry, truncated, too big for RAM. */
	o = bz_default;
	o.version = 0x0209;
	in.kernel = put_file("bz-old", buf, make_bzimage(buf, &o));
	expect_fail(&m, &in, ENOTSUP, "too old");
	o = bz_default;
	o.xloadflags = 0;
	in.kernel = put_file("bz-32", buf, make_bzimage(buf, &o));
	expect_fail(&m, &in, ENOTSUP, "64-bit entry");
	o = bz_default;
	make_bzimage(buf, &o);
	in.kernel = put_file("bz-cut", buf, (BZ_SETUP_SECTS + 1) * 512 - 100);
	expect_fail(&m, &in, ENOEXEC, "truncated");
	in.kernel = put_file("bz-cut-hdr", buf, 0x220);
	expect_fail(&m, &in, ENOEXEC, "truncated");
	o.init_size = 32 * MIB;
	in.kernel = put_file("bz-huge", buf, make_bzimage(buf, &o));
	expect_fail(&m, &in, ENOMEM, "does not fit in guest RAM");
	/* Fits at 1 MiB, but the kernel is extracted at pref_address (15 MiB) and needs
	 * init_size (2 MiB) there. */
	o = bz_default;
	o.pref_address = 15 * MIB;
	o.init_size = 2 * MIB;
	in.kernel = put_file("bz-pref", buf, make_bzimage(buf, &o));
	expect_fail(&m, &in, ENOMEM, "does not fit in guest RAM");

	/* initrd larger than the RAM between the kernel and the end. */
	in.kernel = put_file("bz-ok", buf, make_bzimage(buf, &bz_default));
	{
		size_t big = 15 * MIB;
		unsigned char *rd = calloc(1, big);

		assert_non_null(rd);
		in.initrd = put_file("rd-big", rd, big);
		free(rd);
	}
	expect_fail(&m, &in, E2BIG, "initrd");
	expect_fail(&m, &in, E2BIG, "too big");
	in.initrd = "/nonexistent/initrd";
	expect_fail(&m, &in, ENOENT, "not found");
	in.initrd = NULL;

	/* Command line longer than the kernel's cmdline_size (255 here). */
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	in.cmdline = line;
	expect_fail(&m, &in, E2BIG, "command line too long");
	line[255] = 0;      /* exactly cmdline_size is fine */
	{
		struct boot_info bi;

		assert_int_equal(boot_load(m.p, m.size, &in, &bi), 0);
		assert_string_equal((char *)m.p + BOOT_CMDLINE_GPA, line);
	}
	mem_free(&m);
}

static void expect_fail_size(struct guestmem *m, uint64_t size, const struct boot_params_in *in)
{
	struct boot_info bi;
	int r = boot_load(m->p, size, in, &bi);

	if (r != -EINVAL || !strstr(pv_errmsg(), "not supported"))
		fail_msg("boot_load with %llu bytes = %d, \"%s\"", (unsigned long long)size, r, pv_errmsg());
}

static void test_bad_ram_size(void **state)
{
	static unsigned char buf[0x1000 + 0x2000];
	struct guestmem m = mem_new(1 * MIB);
	struct boot_params_in in = { 0 };

	(void)state;
	in.kernel = put_file("elf-small", buf, make_elf(buf, 0x100000, 0x100000, 0x100000, 0x2000, 0x2000));
	expect_fail(&m, &in, ENOMEM, "too small");
	mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_elf),
		cmocka_unit_test(test_elf_virtual_entry),
		cmocka_unit_test(test_bzimage_synthetic),
		cmocka_unit_test(test_bzimage_not_relocatable),
		cmocka_unit_test(test_initrd_below_addr_max),
		cmocka_unit_test(test_elf_initrd_large_ram),
		cmocka_unit_test(test_bzimage_real),
		cmocka_unit_test(test_vmlinux_real),
		cmocka_unit_test(test_bad_images),
		cmocka_unit_test(test_bad_ram_size),
	};

	return cmocka_run_group_tests_name("boot", tests, setup_dir, teardown_dir);
}
