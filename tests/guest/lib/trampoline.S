/* trampoline.S — the real-mode start-up code for application processors. smp.c
 * copies tramp_start..tramp_end to TRAMP_BASE (0x8000, SIPI vector 0x08) and fills
 * in tr_cr3/tr_stack/tr_entry. The AP goes straight from real mode to long mode
 * (PAE, the BSP's CR3, EFER.LME, then CR0.PE|PG together) and calls tr_entry on its
 * stack. tr_stage says how far it got: 1 real mode, 2 paging set up, 3 long mode;
 * the C entry sets 4. Everything is addressed absolutely (ds = 0). */
#define TRAMP_BASE 0x8000
#define T(sym) (TRAMP_BASE + ((sym) - tramp_start))

	.section .rodata
	.balign 16
	.globl tramp_start, tramp_end, tr_stage, tr_cr3, tr_stack, tr_entry
	.code16
tramp_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movl $1, T(tr_stage)
	lgdtl T(tr_gdtr)
	movl %cr4, %eax
	orl $0x20, %eax                 /* PAE */
	movl %eax, %cr4
	movl T(tr_cr3), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx          /* EFER */
	rdmsr
	orl $0x100, %eax                /* LME */
	wrmsr
	movl $2, T(tr_stage)
	movl %cr0, %eax
	orl $0x80000001, %eax           /* PG | PE */
	movl %eax, %cr0
	ljmpl $0x10, $T(tr_long)

	.code64
tr_long:
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $3, T(tr_stage)
	movq T(tr_stack), %rsp
	movq T(tr_entry), %rax
	call *%rax
1:	cli
	hlt
	jmp 1b

	.balign 8
tr_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff        /* 0x08: 32-bit code (unused) */
	.quad 0x00af9b000000ffff        /* 0x10: 64-bit code */
	.quad 0x00cf93000000ffff        /* 0x18: data */
tr_gdtr:
	.word 31
	.long T(tr_gdt)
	.balign 8
tr_stage:
	.long 0
	.long 0
tr_cr3:
	.quad 0
tr_stack:
	.quad 0
tr_entry:
	.quad 0
tramp_end:
