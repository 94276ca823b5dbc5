/* boot.c — the Linux x86-64 boot protocol loader: ELF vmlinux and bzImage
 * (protocol >= 2.10), the boot_params zero page with its e820 map, the command line,
 * the initrd, identity-mapped page tables and a flat GDT for a direct 64-bit entry.
 * Works on a plain buffer standing for guest RAM (gpa == offset), so the unit tests
 * run it without KVM. Layout and errors: docs/boot.md. */
#include "vmm/x86/boot.h"
#include "vmm/util.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)

#define HDRS_MAGIC 0x53726448u    /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xaa55
#define PROTO_MIN 0x020a          /* 2.10: pref_address, init_size */
#define PROTO_ELF 0x020f          /* what we claim to an ELF vmlinux */
#define ELF_CMDLINE_SIZE 2047     /* COMMAND_LINE_SIZE - 1 on x86 */
#define ELF_INITRD_MAX 0x7fffffffu

/* Page-table and GDT entry bits. */
#define PTE_P  0x001ull
#define PTE_RW 0x002ull
#define PTE_PS 0x080ull

struct image {
	const char *path;
	const unsigned char *data; /* pv_map_file's */
	size_t len;
};

static void put_e820(struct boot_params *bp, uint64_t addr, uint64_t size, uint32_t type)
{
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];

	e->addr = addr;
	e->size = size;
	e->type = type;
}

/* The identity map of the first 4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> four PDs of
 * 512 2 MiB pages. It covers the LAPIC/IOAPIC and the MMIO windows below 4 GiB. */
static void write_page_tables(unsigned char *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + BOOT_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(mem + BOOT_PDPT_GPA);

	memset(mem + BOOT_PML4_GPA, 0, BOOT_PT_END_GPA - BOOT_PML4_GPA);
	pml4[0] = BOOT_PDPT_GPA | PTE_P | PTE_RW;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t *pd = (uint64_t *)(mem + BOOT_PD_GPA + i * 0x1000ull);

		pdpt[i] = (BOOT_PD_GPA + i * 0x1000ull) | PTE_P | PTE_RW;
		for (unsigned j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i * GIB + (uint64_t)j * 2 * MIB) | PTE_P | PTE_RW | PTE_PS;
	}
}

/* null, null, code64 at 0x10 (__BOOT_CS), data at 0x18 (__BOOT_DS): the selectors the
 * 64-bit boot protocol names. */
static void write_gdt(unsigned char *mem)
{
	uint64_t *gdt = (uint64_t *)(mem + BOOT_GDT_GPA);

	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffull;   /* P, DPL0, code exec/read, accessed, L, G */
	gdt[3] = 0x00cf93000000ffffull;   /* P, DPL0, data read/write, accessed, D/B, G */
}

static int read_image(const char *what, const char *path, struct image *img)
{
	const unsigned char *data;
	size_t len;
	int r;

	img->path = path;
	r = pv_map_file(path, &data, &len);
	if (r < 0) {
		if (r == -ENOENT)
			return pv_error(ENOENT, "%s %s: not found", what, path);
		return pv_error(-r, "%s %s: cannot read: %s", what, path, strerror(-r));
	}
	img->data = data;
	img->len = len;
	return 0;
}

/* ELF vmlinux: every PT_LOAD at its physical address; the entry is e_entry, which
 * Linux already gives as a physical address (phys_startup_64); a virtual e_entry
 * inside a segment is translated with that segment's p_vaddr -> p_paddr. */
static int load_elf(unsigned char *mem, uint64_t mem_size, const struct image *k,
		    struct boot_info *out)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)k->data;
	uint64_t end = 0, entry;
	bool entry_ok = false;
	unsigned nload = 0;

	if (k->len < sizeof(*eh))
		return pv_error(ENOEXEC, "kernel %s: truncated ELF header (%zu bytes)", k->path, k->len);
	entry = eh->e_entry;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64)
		return pv_error(ENOEXEC, "kernel %s: ELF but not x86-64 (class %u, machine %u)",
				k->path, eh->e_ident[EI_CLASS], eh->e_machine);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0)
		return pv_error(ENOEXEC, "kernel %s: ELF has no usable program headers", k->path);
	if (eh->e_phoff > k->len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > k->len - eh->e_phoff)
		return pv_error(ENOEXEC, "kernel %s: truncated (program headers beyond the end of the file)",
				k->path);

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(k->data + eh->e_phoff) + i;

		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		if (ph->p_filesz > ph->p_memsz || ph->p_offset > k->len || ph->p_filesz > k->len - ph->p_offset)
			return pv_error(ENOEXEC, "kernel %s: truncated (segment %u wants file bytes %#llx..%#llx, file has %#zx)",
					k->path, i, (unsigned long long)ph->p_offset,
					(unsigned long long)(ph->p_offset + ph->p_filesz), k->len);
		if (ph->p_paddr < BOOT_KERNEL_GPA || ph->p_paddr > mem_size || ph->p_memsz > mem_size - ph->p_paddr)
			return pv_error(ENOMEM, "kernel %s: does not fit in guest RAM (segment %u at %#llx..%#llx, RAM is 1 MiB..%#llx)",
					k->path, i, (unsigned long long)ph->p_paddr,
					(unsigned long long)(ph->p_paddr + ph->p_memsz),
					(unsigned long long)mem_size);
		memcpy(mem + ph->p_paddr, k->data + ph->p_offset, ph->p_filesz);
		memset(mem + ph->p_paddr + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		end = PV_MAX(end, ph->p_paddr + ph->p_memsz);
		nload++;
		if (entry >= ph->p_paddr && entry < ph->p_paddr + ph->p_memsz)
			entry_ok = true;
	}
	if (nload == 0)
		return pv_error(ENOEXEC, "kernel %s: ELF has no loadable segments", k->path);
	for (unsigned i = 0; !entry_ok && i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(k->data + eh->e_phoff) + i;

		if (ph->p_type == PT_LOAD && entry >= ph->p_vaddr && entry - ph->p_vaddr < ph->p_memsz) {
			entry = entry - ph->p_vaddr + ph->p_paddr;
			entry_ok = true;
		}
	}
	if (!entry_ok)
		return pv_error(ENOEXEC, "kernel %s: entry point %#llx is in no loadable segment",
				k->path, (unsigned long long)eh->e_entry);
	out->entry = entry;
	out->kernel_end = end;
	out->is_elf = 1;
	out->protocol = 0;
	return 0;
}

/* A synthetic setup header for an ELF vmlinux, which has none of its own. */
static void elf_setup_header(struct setup_header *h)
{
	h->boot_flag = BOOT_FLAG_MAGIC;
	h->header = HDRS_MAGIC;
	h->version = PROTO_ELF;
	h->loadflags = LOADED_HIGH;
	h->kernel_alignment = 0x1000000;
	h->initrd_addr_max = ELF_INITRD_MAX;
	h->cmdline_size = ELF_CMDLINE_SIZE;
}

/* bzImage: the setup header (0x1f1..) goes into the zero page, the protected-mode
 * kernel (after the (setup_sects + 1) * 512 bytes of real-mode setup) at 1 MiB, or at
 * pref_address when the kernel is not relocatable; the 64-bit entry is 0x200 in. */
static int load_bzimage(unsigned char *mem, uint64_t mem_size, const struct image *k,
			struct boot_params *bp, struct boot_info *out)
{
	const struct setup_header *fh = (const struct setup_header *)(k->data + 0x1f1);
	size_t hdr_end, setup_size, pm_size;
	uint64_t load, run, need;

	if (k->len < 0x1f1 + sizeof(*fh))
		return pv_error(ENOEXEC, "kernel %s: truncated (%zu bytes, too short for a bzImage setup header)",
				k->path, k->len);
	if (fh->header != HDRS_MAGIC)
		return pv_error(ENOEXEC, "kernel %s: wrong magic: neither an ELF vmlinux nor a bzImage (no \"HdrS\" at 0x202)",
				k->path);
	if (fh->version < PROTO_MIN)
		return pv_error(ENOTSUP, "kernel %s: boot protocol %u.%02u is too old (need >= 2.10)",
				k->path, fh->version >> 8, fh->version & 0xff);
	if (!(fh->xloadflags & XLF_KERNEL_64))
		return pv_error(ENOTSUP, "kernel %s: bzImage has no 64-bit entry point (xloadflags %#x)",
				k->path, fh->xloadflags);

	setup_size = ((size_t)(fh->setup_sects ? fh->setup_sects : 4) + 1) * 512;
	if (setup_size >= k->len)
		return pv_error(ENOEXEC, "kernel %s: truncated (%zu bytes, setup alone is %zu)",
				k->path, k->len, setup_size);
	pm_size = k->len - setup_size;

	/* The header runs to 0x202 + the jump's 8-bit offset; never past our struct. */
	hdr_end = 0x202 + k->data[0x201];
	hdr_end = PV_MIN(hdr_end, 0x1f1 + sizeof(struct setup_header));
	memcpy(&bp->hdr, fh, hdr_end - 0x1f1);

	load = fh->relocatable_kernel ? BOOT_KERNEL_GPA : fh->pref_address;
	if (load < BOOT_KERNEL_GPA)
		load = BOOT_KERNEL_GPA;
	/* The decompressor runs from `load` but extracts the kernel to its aligned
	 * address, never below pref_address (LOAD_PHYSICAL_ADDR), needing init_size
	 * there: that is the memory the initrd must stay clear of. */
	run = PV_MAX(load, (uint64_t)fh->pref_address);
	need = PV_MAX((uint64_t)pm_size, (uint64_t)fh->init_size);
	if (load + pm_size > mem_size || run > mem_size || need > mem_size - run)
		return pv_error(ENOMEM, "kernel %s: does not fit in guest RAM (needs up to %#llx, RAM ends at %#llx)",
				k->path, (unsigned long long)(run + need), (unsigned long long)mem_size);
	memcpy(mem + load, k->data + setup_size, pm_size);

	bp->hdr.code32_start = (uint32_t)load;
	out->entry = load + 0x200;
	out->kernel_end = PV_MAX(load + pm_size, run + need);
	out->is_elf = 0;
	out->protocol = fh->version;
	return 0;
}

static int load_initrd(unsigned char *mem, uint64_t mem_size, const char *path,
		       struct boot_params *bp, struct boot_info *out)
{
	struct image rd = {0};
	uint64_t limit, addr;
	int r;

	r = read_image("initrd", path, &rd);
	if (r < 0)
		return r;
	/* Highest byte allowed: initrd_addr_max, the end of RAM, 4 GiB (32-bit field). */
	limit = PV_MIN((uint64_t)bp->hdr.initrd_addr_max + 1, mem_size);
	limit = PV_MIN(limit, 4 * GIB);
	if (rd.len > limit || ((limit - rd.len) & ~0xfffull) < out->kernel_end) {
		r = pv_error(E2BIG, "initrd %s: too big (%zu bytes; %llu bytes free between the kernel's end %#llx and %#llx)",
			     path, rd.len,
			     (unsigned long long)(limit > out->kernel_end ? limit - out->kernel_end : 0),
			     (unsigned long long)out->kernel_end, (unsigned long long)limit);
		goto out;
	}
	addr = (limit - rd.len) & ~0xfffull;
	memcpy(mem + addr, rd.data, rd.len);
	bp->hdr.ramdisk_image = (uint32_t)addr;
	bp->hdr.ramdisk_size = (uint32_t)rd.len;
	out->initrd_addr = addr;
	out->initrd_size = rd.len;
out:
	pv_unmap_file(rd.data, rd.len);
	return r;
}

int boot_load(void *memv, uint64_t mem_size, const struct boot_params_in *in,
	      struct boot_info *out)
{
	unsigned char *mem = memv;
	struct boot_params *bp;
	struct image k = {0};
	const char *cmdline = in->cmdline ? in->cmdline : "";
	size_t cl_len = strlen(cmdline);
	int r;

	memset(out, 0, sizeof(*out));
	if (!in->kernel)
		return pv_error(EINVAL, "no kernel given");
	if (mem_size < BOOT_MIN_RAM)
		return pv_error(ENOMEM, "guest RAM of %llu bytes is too small (need at least %llu MiB)",
				(unsigned long long)mem_size, BOOT_MIN_RAM / MIB);
	if (mem_size > BOOT_MAX_RAM)
		return pv_error(EINVAL, "guest RAM of %llu MiB is not supported (at most %llu MiB: the MMIO hole starts there)",
				(unsigned long long)(mem_size / MIB), BOOT_MAX_RAM / MIB);

	r = read_image("kernel", in->kernel, &k);
	if (r < 0)
		return r;

	bp = (struct boot_params *)(mem + BOOT_PARAMS_GPA);
	memset(bp, 0, sizeof(*bp));
	if (k.len >= 4 && memcmp(k.data, ELFMAG, SELFMAG) == 0) {
		elf_setup_header(&bp->hdr);
		r = load_elf(mem, mem_size, &k, out);
	} else if (k.len < 0x1f1 + sizeof(struct setup_header)) {
		r = pv_error(ENOEXEC, "kernel %s: truncated or not a kernel (%zu bytes, no ELF magic, too short for a bzImage)",
			     in->kernel, k.len);
	} else {
		r = load_bzimage(mem, mem_size, &k, bp, out);
	}
	if (r < 0)
		goto out;

	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = 0xfe00;
	if (!bp->hdr.initrd_addr_max)
		bp->hdr.initrd_addr_max = 0x37ffffff;

	/* Command line: cmdline_size counts bytes without the terminating NUL. */
	if (cl_len > bp->hdr.cmdline_size || cl_len >= BOOT_CMDLINE_MAX) {
		r = pv_error(E2BIG, "command line too long (%zu bytes; the kernel accepts at most %u)",
			     cl_len, PV_MIN(bp->hdr.cmdline_size, (uint32_t)BOOT_CMDLINE_MAX - 1));
		goto out;
	}
	memset(mem + BOOT_CMDLINE_GPA, 0, BOOT_CMDLINE_MAX);
	memcpy(mem + BOOT_CMDLINE_GPA, cmdline, cl_len);
	bp->hdr.cmd_line_ptr = BOOT_CMDLINE_GPA;

	if (in->initrd) {
		r = load_initrd(mem, mem_size, in->initrd, bp, out);
		if (r < 0)
			goto out;
	}

	/* e820: base RAM, the EBDA (MP table) to 1 MiB reserved, RAM from 1 MiB. */
	put_e820(bp, 0, BOOT_MPTABLE_GPA, BOOT_E820_RAM);
	put_e820(bp, BOOT_MPTABLE_GPA, BOOT_KERNEL_GPA - BOOT_MPTABLE_GPA, BOOT_E820_RESERVED);
	put_e820(bp, BOOT_KERNEL_GPA, mem_size - BOOT_KERNEL_GPA, BOOT_E820_RAM);

	write_page_tables(mem);
	write_gdt(mem);

	out->boot_params = BOOT_PARAMS_GPA;
	out->pml4 = BOOT_PML4_GPA;
	out->gdt_base = BOOT_GDT_GPA;
	out->gdt_limit = 4 * 8 - 1;
	out->cs = 0x10;
	out->ds = 0x18;
	out->stack = BOOT_STACK_TOP;
out:
	pv_unmap_file(k.data, k.len);
	return r;
}
