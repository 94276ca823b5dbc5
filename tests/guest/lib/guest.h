/* guest.h — the test guest's library (tests/guest/lib): serial console, printf,
 * kvm-unit-tests style reporting, exit through port 0xf4, boot_params, interrupts
 * (IDT), the LAPIC/IOAPIC/PIC/PIT, the MP table and a rough TSC clock. A test is one
 * file tests/guest/<name>.c whose main() ends with `return report_summary();`.
 * Everything is single-threaded except where noted (SMP helpers). docs/test-guest.md */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- libc subset (libc.c) ---- */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strstr(const char *h, const char *n);
/* Parses a decimal or 0x-prefixed number; *end (optional) points after it. */
uint64_t strtou64(const char *s, const char **end);
/* printf subset: %d %i %u %x %X %p %s %c %%, flags '0' '-' '#', width, l ll z. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int puts(const char *s);   /* no newline added */

/* ---- 8250 UART at 0x3f8 (serial.c) ---- */
void serial_putc(char c);
void serial_write(const char *s, size_t n);
/* A received byte, or -1 when none arrived within timeout_ms (rough, TSC based). */
int serial_getc(unsigned timeout_ms);
/* Reads up to '\n' (not stored) into buf; returns the length or -1 on timeout. */
int serial_readline(char *buf, size_t size, unsigned timeout_ms);

/* ---- reporting (report.c) ---- */
void report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "SUMMARY: ..." and returns the exit status: 0 all passed, 1 any failed. */
int report_summary(void);
/* Writes `code` to the exit port 0xf4; the VMM ends the VM with that code. */
void exit(int code) __attribute__((noreturn));
void abort_test(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* ---- time (time.c): rough, from the TSC frequency in CPUID or 2 GHz ---- */
uint64_t tsc_khz(void);
uint64_t now_us(void);
void udelay(uint64_t us);

/* ---- boot_params (bootparams.c) ---- */
#define E820_RAM 1
#define E820_RESERVED 2
struct e820_entry { uint64_t addr, size; uint32_t type; } __attribute__((packed));
extern uint64_t boot_params_ptr;       /* rsi at entry */
const char *bp_cmdline(void);
unsigned bp_e820(const struct e820_entry **table);
uint64_t bp_ram_bytes(void);           /* sum of E820_RAM entries */
uint64_t bp_ram_end(void);             /* end of the highest E820_RAM entry */
/* "key=value" on the command line: true and *val when found. */
bool cmdline_u64(const char *key, uint64_t *val);
bool cmdline_has(const char *word);

/* ---- interrupts (idt.c) ---- */
struct isr_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};
typedef void (*isr_fn)(struct isr_frame *f);
/* Loads the IDT (once; every vector gets a stub). Unhandled exceptions print FAIL
 * and exit with status 2; unhandled interrupts are counted in isr_spurious. */
void idt_init(void);
void idt_set_handler(unsigned vector, isr_fn fn);
extern volatile unsigned isr_spurious;

/* ---- APIC, IOAPIC, PIC, PIT (apic.c) ---- */
#define LAPIC_BASE 0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull
uint32_t lapic_read(unsigned reg);
void lapic_write(unsigned reg, uint32_t v);
unsigned lapic_id(void);
void lapic_enable(void);                   /* software enable, spurious vector 0xff */
void lapic_eoi(void);
/* Periodic LAPIC timer on `vector`, divide by 16, initial count `count`. */
void lapic_timer_periodic(unsigned vector, uint32_t count);
void lapic_timer_stop(void);
/* ICR: INIT and STARTUP IPIs to one APIC id; return false when the ICR stays busy. */
bool lapic_send_init(unsigned apic_id);
bool lapic_send_sipi(unsigned apic_id, unsigned page);
uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t v);
/* Edge, active high, fixed delivery to `apic_id`; masked when `masked`. */
void ioapic_route(unsigned pin, unsigned vector, unsigned apic_id, bool masked);
/* Remaps the 8259 pair to vectors 0x20/0x28 and masks every line. */
void pic_disable(void);
/* PIT channel 0, mode 2 (rate generator) at `hz`. */
void pit_start(unsigned hz);
void pit_stop(void);

/* ---- MP table (mptable.c) ---- */
struct mp_info {
	unsigned ncpus;
	uint8_t apic_ids[64];
	unsigned bsp_id;
	unsigned ioapic_id;
	uint32_t ioapic_addr;
	int isa_irq_pin[16];   /* -1: no entry */
};
/* Finds and checks "_MP_" (last KiB of base memory, then 0xf0000..0xfffff).
 * Returns false with *why set when it is missing or malformed. */
bool mp_parse(struct mp_info *mi, const char **why);

/* ---- SMP (smp.c, trampoline.S) ---- */
/* How far an AP got (it writes these as it goes). */
#define SMP_STAGE_NONE 0
#define SMP_STAGE_REAL 1
#define SMP_STAGE_PAGING 2
#define SMP_STAGE_LONG 3
#define SMP_STAGE_C 4
/* Starts the AP `apic_id` (trampoline at 0x8000: INIT, then up to two SIPIs) and
 * runs fn on it with interrupts off; the AP halts when fn returns. Returns the stage
 * reached (SMP_STAGE_C on success) or -1 when the ICR would not send; *why explains. */
int smp_start_ap(unsigned apic_id, void (*fn)(void), unsigned timeout_ms, const char **why);
const char *smp_stage_name(int stage);

#endif
