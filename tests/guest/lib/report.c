/* report.c — kvm-unit-tests style results on the serial console: one
 * "PASS: name" / "FAIL: name" / "SKIP: name" line per check, a SUMMARY line, and the
 * exit status (0 all passed, 1 any failed) that main() hands to exit(). */
#include "guest.h"

static unsigned n_pass, n_fail, n_skip;

static void vline(const char *tag, const char *fmt, va_list ap)
{
	char buf[400];
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	puts(tag);
	serial_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	serial_putc('\r');
	serial_putc('\n');
}

void report(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(pass ? "PASS: " : "FAIL: ", fmt, ap);
	va_end(ap);
	if (pass)
		n_pass++;
	else
		n_fail++;
}

void report_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("SKIP: ", fmt, ap);
	va_end(ap);
	n_skip++;
}

void report_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("INFO: ", fmt, ap);
	va_end(ap);
}

int report_summary(void)
{
	printf("SUMMARY: %u tests, %u unexpected failures, %u skipped\n",
	       n_pass + n_fail, n_fail, n_skip);
	return n_fail ? 1 : 0;
}

void exit(int code)
{
	outb((uint8_t)code, 0xf4);
	/* The VMM stops the VM on that write; if it does not, stop here. */
	for (;;) {
		cli();
		hlt();
	}
}

void abort_test(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("FAIL: ", fmt, ap);
	va_end(ap);
	n_fail++;
	exit(report_summary() | 2);
}
