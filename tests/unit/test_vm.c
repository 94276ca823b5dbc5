/* test_vm.c — the VMM core on the real /dev/kvm, with tiny hand-assembled guests
 * written straight into guest RAM (vm_start_raw): exit-port codes in real and long
 * mode, serial output and input, MMIO dispatch, i8042 reset, triple fault, stop and
 * pause of a spinning guest, several vCPUs, and no fd leaks across create/destroy.
 * Skips (with the reason) when /dev/kvm cannot be opened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CODE_REAL 0x1000
#define CODE_LONG 0x100000

static int kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

#define NEED_KVM()                                                       \
	do {                                                             \
		if (!kvm_usable()) {                                     \
			print_message("# /dev/kvm cannot be opened: %s\n", \
				      strerror(errno));                  \
			skip();                                          \
		}                                                        \
	} while (0)

static struct vm *make_vm(unsigned cpus)
{
	struct vm_config cfg = {.name = "t", .memory_mib = 16, .cpus = cpus};
	struct vm *vm = NULL;
	int err = vm_create(&cfg, &vm);
	if (err)
		print_message("# vm_create: %s\n", pv_errmsg());
	assert_int_equal(err, 0);
	return vm;
}

/* Runs `code` at the mode's address and waits up to 20 s for the exit. */
static struct vm_exit run_code(struct vm *vm, const void *code, size_t len, bool long_mode)
{
	uint64_t at = long_mode ? CODE_LONG : CODE_REAL;
	memcpy(vm_gpa(vm, at, len), code, len);
	int err = vm_start_raw(vm, at, long_mode);
	if (err)
		print_message("# vm_start_raw: %s\n", pv_errmsg());
	assert_int_equal(err, 0);
	struct vm_exit ex;
	err = vm_wait(vm, 20000, &ex);
	if (err)
		print_message("# vm_wait: %s\n", pv_errmsg());
	assert_int_equal(err, 0);
	print_message("# exit: %s %d: %s\n", vm_exit_reason_name(ex.reason), ex.code, ex.detail);
	return ex;
}

static const uint8_t exit42[] = {0xb0, 0x2a, 0xe6, 0xf4, 0xf4}; /* mov $42,%al; out %al,$0xf4; hlt */

static void test_exit_code_real_mode(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	struct vm_exit ex = run_code(vm, exit42, sizeof(exit42), false);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 42);
	assert_true(vm_first_exit_ns(vm) > 0);
	vm_destroy(vm);
}

static void test_exit_code_long_mode(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	struct vm_exit ex = run_code(vm, exit42, sizeof(exit42), true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 42);
	assert_string_equal(vm_exit_reason_name(ex.reason), "exit-port");
	vm_destroy(vm);
}

static void test_serial_output_reaches_console_ring(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	/* mov $0x3f8,%dx; mov $'h',%al; out; mov $'i',%al; out; mov $7,%al; out $0xf4 */
	static const uint8_t code[] = {0xba, 0xf8, 0x03, 0xb0, 'h', 0xee, 0xb0, 'i', 0xee,
				       0xb0, 0x07, 0xe6, 0xf4};
	struct vm_exit ex = run_code(vm, code, sizeof(code), false);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 7);
	char buf[16];
	size_t n = vm_console_log(vm, buf, sizeof(buf));
	assert_int_equal(n, 2);
	assert_memory_equal(buf, "hi", 2);
	vm_destroy(vm);
}

static void test_serial_input_read_by_guest(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	/* Poll LSR.DR, read RBR, exit with the byte:
	 * mov $0x3fd,%dx; 1: in (%dx),%al; test $1,%al; jz 1b; mov $0x3f8,%dx; in; out $0xf4 */
	static const uint8_t code[] = {0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xfb,
				       0xba, 0xf8, 0x03, 0xec, 0xe6, 0xf4};
	memcpy(vm_gpa(vm, CODE_REAL, sizeof(code)), code, sizeof(code));
	assert_int_equal(vm_start_raw(vm, CODE_REAL, false), 0);
	struct vm_exit ex;
	assert_int_equal(vm_wait(vm, 50, &ex), -ETIMEDOUT); /* spinning, no input yet */
	assert_int_equal(vm_console_input(vm, "A", 1), 0);
	assert_int_equal(vm_wait(vm, 20000, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 'A');
	vm_destroy(vm);
}

struct mmio_dev {
	uint64_t last_write, write_off;
	unsigned writes;
};

static void mdev_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	uint32_t v = 0x50 + (uint32_t)off;
	memcpy(data, &v, len < 4 ? len : 4);
}

static void mdev_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct mmio_dev *d = opaque;
	d->last_write = 0;
	memcpy(&d->last_write, data, len < 8 ? len : 8);
	d->write_off = off;
	d->writes++;
}

static const struct bus_ops mdev_ops = {.read = mdev_read, .write = mdev_write};

static void test_mmio_dispatch_to_registered_device(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	uint64_t base = vm_alloc_mmio(vm, 0x200);
	assert_true(base >= 0xd0000000ull);
	assert_int_equal(base & 0xfff, 0);
	assert_true(vm_alloc_mmio(vm, 0x200) >= base + 0x1000);
	struct mmio_dev d = {0};
	assert_int_equal(bus_register(vm_mmio_bus(vm), base, 0x200, &mdev_ops, &d), 0);
	/* mov $base,%ebx; movl $0x1234,8(%rbx); mov 4(%rbx),%eax; out %al,$0xf4 */
	uint8_t code[32], *p = code;
	uint32_t b32 = (uint32_t)base, imm = 0x1234;
	*p++ = 0xbb;
	memcpy(p, &b32, 4); p += 4;
	*p++ = 0xc7; *p++ = 0x43; *p++ = 0x08;
	memcpy(p, &imm, 4); p += 4;
	*p++ = 0x8b; *p++ = 0x43; *p++ = 0x04;
	*p++ = 0xe6; *p++ = 0xf4;
	struct vm_exit ex = run_code(vm, code, p - code, true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 0x54);
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.write_off, 8);
	assert_int_equal(d.last_write, 0x1234);
	vm_destroy(vm);
}

static void test_unclaimed_mmio_reads_all_ones(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	/* mov $0xe0000000,%ebx; movzbl (%rbx),%eax; out %al,$0xf4 */
	static const uint8_t code[] = {0xbb, 0x00, 0x00, 0x00, 0xe0, 0x0f, 0xb6, 0x03,
				       0xe6, 0xf4};
	struct vm_exit ex = run_code(vm, code, sizeof(code), true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 0xff);
	vm_destroy(vm);
}

static void test_i8042_reset(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	static const uint8_t code[] = {0xb0, 0xfe, 0xe6, 0x64, 0xf4}; /* mov $0xfe,%al; out $0x64 */
	struct vm_exit ex = run_code(vm, code, sizeof(code), false);
	assert_int_equal(ex.reason, VM_EXIT_RESET);
	assert_non_null(strstr(ex.detail, "i8042"));
	vm_destroy(vm);
}

static void test_triple_fault(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	/* Long mode: lidt of an empty IDT at 0x1100, then read the unmapped address
	 * 4 GiB: #PF -> #DF -> shutdown. (PVM cannot emulate ud2 in real mode.) */
	static const uint8_t code[] = {0x0f, 0x01, 0x1c, 0x25, 0x00, 0x11, 0x00, 0x00,
				       0xa0, 0, 0, 0, 0, 1, 0, 0, 0};
	memset(vm_gpa(vm, 0x1100, 10), 0, 10);
	struct vm_exit ex = run_code(vm, code, sizeof(code), true);
	assert_int_equal(ex.reason, VM_EXIT_TRIPLE_FAULT);
	assert_non_null(strstr(ex.detail, "triple fault"));
	vm_destroy(vm);
}

static void test_halt_with_interrupts_off_ends_vm(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(2); /* the AP never started counts as idle */
	static const uint8_t code[] = {0xfa, 0xf4}; /* cli; hlt */
	struct vm_exit ex = run_code(vm, code, sizeof(code), true);
	assert_int_equal(ex.reason, VM_EXIT_HALT);
	assert_non_null(strstr(ex.detail, "halted with interrupts disabled"));
	vm_destroy(vm);
}

static void test_halt_with_interrupts_on_keeps_running(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	static const uint8_t code[] = {0xfb, 0xf4, 0xeb, 0xfd}; /* 1: sti; hlt; jmp 1b */
	memcpy(vm_gpa(vm, CODE_LONG, sizeof(code)), code, sizeof(code));
	assert_int_equal(vm_start_raw(vm, CODE_LONG, true), 0);
	struct vm_exit ex;
	/* Several halt probes pass: an interrupt could still wake it. */
	assert_int_equal(vm_wait(vm, 1200, &ex), -ETIMEDOUT);
	vm_stop(vm);
	assert_int_equal(vm_wait(vm, 5000, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_STOPPED);
	vm_destroy(vm);
}

static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp . */

static void test_stop_spinning_guest(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	memcpy(vm_gpa(vm, CODE_REAL, sizeof(spin)), spin, sizeof(spin));
	assert_int_equal(vm_start_raw(vm, CODE_REAL, false), 0);
	struct vm_exit ex;
	assert_int_equal(vm_wait(vm, 700, &ex), -ETIMEDOUT); /* > 2 halt probes */
	vm_stop(vm);
	assert_int_equal(vm_wait(vm, 5000, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_STOPPED);
	vm_destroy(vm);
}

static void test_pause_resume(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(2);
	memcpy(vm_gpa(vm, CODE_REAL, sizeof(spin)), spin, sizeof(spin));
	assert_int_equal(vm_start_raw(vm, CODE_REAL, false), 0);
	assert_int_equal(vm_pause(vm), 0);
	struct vm_exit ex;
	assert_int_equal(vm_wait(vm, 50, &ex), -ETIMEDOUT);
	assert_int_equal(vm_resume(vm), 0);
	assert_int_equal(vm_wait(vm, 50, &ex), -ETIMEDOUT);
	vm_stop(vm);
	assert_int_equal(vm_wait(vm, 5000, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_STOPPED);
	vm_destroy(vm);
}

static void test_several_vcpus_exit_and_join(void **state)
{
	(void)state;
	NEED_KVM();
	/* vCPUs 1..3 stay waiting for INIT/SIPI; the exit must still end all of them. */
	struct vm *vm = make_vm(4);
	struct vm_exit ex = run_code(vm, exit42, sizeof(exit42), true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 42);
	vm_destroy(vm);
}

static void test_exit_races_ap_thread_start(void **state)
{
	(void)state;
	NEED_KVM();
	/* vCPU 0 exits at once, often before the AP threads are created or while
	 * they enter KVM_RUN to wait for SIPI: every one must still be kicked out. */
	for (int i = 0; i < 100; i++) {
		struct vm *vm = make_vm(4);
		memcpy(vm_gpa(vm, CODE_LONG, sizeof(exit42)), exit42, sizeof(exit42));
		assert_int_equal(vm_start_raw(vm, CODE_LONG, true), 0);
		struct vm_exit ex;
		int err = vm_wait(vm, 10000, &ex);
		if (err)
			fail_msg("run %d: a vCPU thread was not kicked out of KVM_RUN", i);
		assert_int_equal(ex.code, 42);
		vm_destroy(vm);
	}
}

static void test_platform_ports_through_the_bus(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	struct bus *pio = vm_pio_bus(vm);
	/* Ports Linux pokes are claimed (so never logged as unclaimed). */
	static const uint16_t quiet[] = {0x80, 0xed, 0x20, 0xa1, 0x40, 0x43, 0x4d0, 0x61,
					 0x2f8, 0x3e8, 0x2e8, 0xcf8, 0xcfc};
	for (size_t i = 0; i < PV_ARRAY_SIZE(quiet); i++) {
		uint8_t v = 0;
		if (!bus_access(pio, quiet[i], &v, 1, false))
			fail_msg("port 0x%x is not claimed", quiet[i]);
	}
	/* No UART at COM2: reads as all-ones, which Linux takes as "absent". */
	uint8_t v = 0;
	bus_access(pio, 0x2fd, &v, 1, false);
	assert_int_equal(v, 0xff);
	/* The i8042 status: input buffer empty (reboot's kb_wait passes at once), a
	 * byte always waiting, all-ones data (Linux's probe: "No controller found"). */
	assert_true(bus_access(pio, 0x64, &v, 1, false));
	assert_int_equal(v, 0x01);
	assert_true(bus_access(pio, 0x60, &v, 1, false));
	assert_int_equal(v, 0xff);
	/* A 4-byte write to the exit port ends the VM with that value. */
	uint32_t code = 0x1234;
	assert_true(bus_access(pio, 0xf4, &code, 4, true));
	struct vm_exit ex;
	assert_int_equal(vm_wait(vm, 0, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 0x1234);
	/* The first reason wins. */
	uint8_t reset = 0xfe;
	assert_true(bus_access(pio, 0x64, &reset, 1, true));
	assert_int_equal(vm_wait(vm, 0, &ex), 0);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	vm_destroy(vm);
}

static void test_destroy_without_start(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(2);
	vm_destroy(vm);
}

static void test_bad_config_rejected(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = NULL;
	struct vm_config cfg = {.name = "big", .memory_mib = 8192};
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "memory"));
	cfg = (struct vm_config){.name = "many", .cpus = 1000};
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "cpus"));
	cfg = (struct vm_config){.name = "nokernel"};
	assert_int_equal(vm_create(&cfg, &vm), 0);
	assert_int_equal(vm_start(vm), -EINVAL);
	assert_non_null(strstr(pv_errmsg(), "no kernel"));
	vm_destroy(vm);
}

static void test_alloc_irq_and_cmdline(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	int seen = 0;
	for (int i = 0; i < 19; i++) {
		int gsi = vm_alloc_irq(vm);
		assert_true(gsi >= 5 && gsi <= 23);
		assert_false(seen & (1 << gsi));
		seen |= 1 << gsi;
	}
	assert_int_equal(vm_alloc_irq(vm), -ENOSPC);
	assert_int_equal(vm_cmdline_add(vm, "virtio_mmio.device=4K@0xd0000000:5"), 0);
	vm_destroy(vm);
}

struct hookrec {
	int calls;
	unsigned n;
};

static void cpuid_hook(void *opaque, struct kvm_cpuid_entry2 *e, unsigned n)
{
	struct hookrec *h = opaque;
	h->calls++;
	h->n = n;
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == 0x40000000)
			e[i].ebx = (e[i].ebx & ~0xffu) | 0x77;
}

/* mov $leaf,%eax; xor %ecx,%ecx; cpuid; mov %<reg>,%eax; shr $shift,%eax; out %al,$0xf4 */
static int run_cpuid(struct vm *vm, uint32_t leaf, uint8_t mov_modrm, uint8_t shift)
{
	uint8_t code[] = {0xb8, 0, 0, 0, 0, 0x31, 0xc9, 0x0f, 0xa2, 0x89, mov_modrm,
			  0xc1, 0xe8, shift, 0xe6, 0xf4};
	memcpy(code + 1, &leaf, 4);
	struct vm_exit ex = run_code(vm, code, sizeof(code), true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	return ex.code;
}

static void test_cpuid_signature_and_hypervisor_bit(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	assert_int_equal(run_cpuid(vm, 0x40000000, 0xd8, 0), 'K'); /* ebx = "KVMK" */
	vm_destroy(vm);
	vm = make_vm(1);
	assert_int_equal(run_cpuid(vm, 1, 0xc8, 31), 1); /* ecx bit 31 */
	vm_destroy(vm);
}

static void test_cpuid_hook_masks_what_guest_sees(void **state)
{
	(void)state;
	NEED_KVM();
	struct hookrec h = {0};
	struct vm_config cfg = {.name = "hook", .memory_mib = 16, .cpus = 2,
				.cpuid_hook = cpuid_hook, .cpuid_opaque = &h};
	struct vm *vm;
	assert_int_equal(vm_create(&cfg, &vm), 0);
	assert_int_equal(h.calls, 2); /* once per vCPU */
	assert_true(h.n > 5);
	assert_int_equal(run_cpuid(vm, 0x40000000, 0xd8, 0), 0x77);
	vm_destroy(vm);
}

static void test_boot_msrs_set(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	/* mov $0x2ff,%ecx; rdmsr; out %al,$0xf4: MTRRdefType's default type WB = 6 */
	static const uint8_t code[] = {0xb9, 0xff, 0x02, 0, 0, 0x0f, 0x32, 0xe6, 0xf4};
	struct vm_exit ex = run_code(vm, code, sizeof(code), true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	assert_int_equal(ex.code, 6);
	vm_destroy(vm);
}

static void test_ioeventfd_takes_mmio_write(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	uint64_t base = vm_alloc_mmio(vm, 0x1000);
	struct mmio_dev d = {0};
	assert_int_equal(bus_register(vm_mmio_bus(vm), base, 0x100, &mdev_ops, &d), 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int err = vm_ioeventfd(vm, base + 0x50, 4, efd, false, 0, true);
	if (err == -ENOTSUP) {
		print_message("# %s\n", pv_errmsg());
		close(efd);
		vm_destroy(vm);
		skip();
	}
	assert_int_equal(err, 0);
	/* mov $base,%ebx; movl $1,0x50(%rbx); movl $2,0x10(%rbx); out %al,$0xf4 */
	uint8_t code[32], *p = code;
	uint32_t b32 = (uint32_t)base, one = 1, two = 2;
	*p++ = 0xbb;
	memcpy(p, &b32, 4); p += 4;
	*p++ = 0xc7; *p++ = 0x43; *p++ = 0x50;
	memcpy(p, &one, 4); p += 4;
	*p++ = 0xc7; *p++ = 0x43; *p++ = 0x10;
	memcpy(p, &two, 4); p += 4;
	*p++ = 0xe6; *p++ = 0xf4;
	struct vm_exit ex = run_code(vm, code, p - code, true);
	assert_int_equal(ex.reason, VM_EXIT_PORT);
	uint64_t v = 0;
	assert_int_equal(read(efd, &v, 8), 8);
	assert_int_equal(v, 1);
	/* Only the write outside the ioeventfd reached the bus. */
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.write_off, 0x10);
	assert_int_equal(vm_ioeventfd(vm, base + 0x50, 4, efd, false, 0, false), 0);
	int ifd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int gsi = vm_alloc_irq(vm);
	err = vm_irqfd(vm, gsi, ifd, true);
	assert_true(err == 0 || err == -ENOTSUP);
	if (!err)
		assert_int_equal(vm_irqfd(vm, gsi, ifd, false), 0);
	close(ifd);
	close(efd);
	vm_destroy(vm);
}

static void test_console_ring_keeps_newest_mib(void **state)
{
	(void)state;
	NEED_KVM();
	struct vm *vm = make_vm(1);
	char small[8];
	assert_int_equal(vm_console_log(vm, small, sizeof(small)), 0);
	/* 1.5 MiB in uneven chunks: byte i is (i % 251). */
	size_t total = 3u << 19, done = 0, chunk = 4093;
	char *buf = malloc(chunk);
	while (done < total) {
		size_t n = PV_MIN(chunk, total - done);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)((done + i) % 251);
		vm_console_output(vm, buf, n);
		done += n;
	}
	free(buf);
	size_t cap = 2u << 20;
	char *log = malloc(cap);
	size_t got = vm_console_log(vm, log, cap);
	assert_int_equal(got, 1u << 20); /* the ring is 1 MiB */
	for (size_t i = 0; i < got; i++)
		if (log[i] != (char)((total - got + i) % 251))
			fail_msg("byte %zu of the log is wrong", i);
	assert_int_equal(vm_console_log(vm, log, 10), 10);
	assert_int_equal(log[9], (char)((total - 1) % 251));
	free(log);
	vm_destroy(vm);
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_no_fd_leaks(void **state)
{
	(void)state;
	NEED_KVM();
	int before = count_fds();
	for (int i = 0; i < 3; i++) {
		struct vm *vm = make_vm(2);
		struct vm_exit ex = run_code(vm, exit42, sizeof(exit42), true);
		assert_int_equal(ex.code, 42);
		vm_destroy(vm);
	}
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_code_real_mode),
		cmocka_unit_test(test_exit_code_long_mode),
		cmocka_unit_test(test_serial_output_reaches_console_ring),
		cmocka_unit_test(test_serial_input_read_by_guest),
		cmocka_unit_test(test_mmio_dispatch_to_registered_device),
		cmocka_unit_test(test_unclaimed_mmio_reads_all_ones),
		cmocka_unit_test(test_i8042_reset),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_halt_with_interrupts_off_ends_vm),
		cmocka_unit_test(test_halt_with_interrupts_on_keeps_running),
		cmocka_unit_test(test_stop_spinning_guest),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_several_vcpus_exit_and_join),
		cmocka_unit_test(test_exit_races_ap_thread_start),
		cmocka_unit_test(test_platform_ports_through_the_bus),
		cmocka_unit_test(test_destroy_without_start),
		cmocka_unit_test(test_bad_config_rejected),
		cmocka_unit_test(test_alloc_irq_and_cmdline),
		cmocka_unit_test(test_cpuid_signature_and_hypervisor_bit),
		cmocka_unit_test(test_cpuid_hook_masks_what_guest_sees),
		cmocka_unit_test(test_boot_msrs_set),
		cmocka_unit_test(test_ioeventfd_takes_mmio_write),
		cmocka_unit_test(test_console_ring_keeps_newest_mib),
		cmocka_unit_test(test_no_fd_leaks),
	};
	return cmocka_run_group_tests_name("vm", tests, NULL, NULL);
}
