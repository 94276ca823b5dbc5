/* entry.S — the test guest's entry and interrupt stubs. The VMM enters _start in
 * 64-bit mode like a vmlinux: paging on (identity map), flat GDT, rsi = boot_params.
 * _start takes its own stack, calls main() and writes main's return value to the
 * exit port 0xf4. isr_stubs holds 256 16-byte stubs (vector n at isr_stubs + 16n)
 * that push an error code (0 when the CPU pushes none) and the vector, save the
 * registers and call isr_dispatch(struct isr_frame *). */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	movq %rsi, boot_params_ptr(%rip)
	leaq stack_top(%rip), %rsp
	xorl %ebp, %ebp
	call main
	movl %eax, %edi
	call exit
1:	cli
	hlt
	jmp 1b

	.text
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call isr_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

	.bss
	.balign 16
	.globl boot_params_ptr
boot_params_ptr:
	.quad 0
	.balign 16
	.space 16384
stack_top:
