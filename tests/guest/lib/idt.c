/* idt.c — a 256-entry IDT whose gates point at entry.S's stubs, and the C dispatcher
 * they call. Tests register handlers per vector; an exception nobody handles is a
 * test failure (printed with rip and error code), never a silent hang. */
#include "guest.h"

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

extern char isr_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static isr_fn handlers[256];
volatile unsigned isr_spurious;

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP",
	"#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void idt_init(void)
{
	static bool done;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
	uint16_t cs = read_cs();

	if (done)
		return;
	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(isr_stubs + 16 * v);

		idt[v].off0 = (uint16_t)a;
		idt[v].sel = cs;
		idt[v].ist = 0;
		idt[v].type = 0x8e;           /* present, DPL 0, 64-bit interrupt gate */
		idt[v].off1 = (uint16_t)(a >> 16);
		idt[v].off2 = (uint32_t)(a >> 32);
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));
	done = true;
}

void idt_set_handler(unsigned vector, isr_fn fn)
{
	idt_init();
	handlers[vector & 255] = fn;
}

void isr_dispatch(struct isr_frame *f);
void isr_dispatch(struct isr_frame *f)
{
	isr_fn fn = handlers[f->vector & 255];

	if (fn) {
		fn(f);
		return;
	}
	if (f->vector < 32) {
		uint64_t cr2;

		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		abort_test("unexpected exception %lu %s at rip %#lx, error %#lx, cr2 %#lx",
			   f->vector, exc_names[f->vector] ? exc_names[f->vector] : "?",
			   f->rip, f->error, cr2);
	}
	isr_spurious++;
	if (f->vector >= 0x20 && f->vector != 0xff)
		lapic_eoi();
}
