/* serial.c — polled 8250 UART at 0x3f8: transmit waits for THR empty (LSR bit 5),
 * receive waits for data ready (LSR bit 0). No interrupts, no FIFO set-up needed. */
#include "guest.h"

#define COM1 0x3f8
#define UART_RBR 0
#define UART_THR 0
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

void serial_putc(char c)
{
	/* Bounded: a UART that never drains must not hang the test silently forever. */
	for (unsigned i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & LSR_THRE); i++)
		cpu_relax();
	outb((uint8_t)c, COM1 + UART_THR);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			serial_putc('\r');
		serial_putc(s[i]);
	}
}

int serial_getc(unsigned timeout_ms)
{
	uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;

	do {
		if (inb(COM1 + UART_LSR) & LSR_DR)
			return inb(COM1 + UART_RBR);
		cpu_relax();
	} while (now_us() < end);
	return -1;
}

int serial_readline(char *buf, size_t size, unsigned timeout_ms)
{
	size_t n = 0;

	for (;;) {
		int c = serial_getc(timeout_ms);

		if (c < 0)
			return -1;
		if (c == '\n' || c == '\r') {
			if (n == 0)
				continue;   /* the \n of a \r\n pair, or an empty line */
			break;
		}
		if (n + 1 < size)
			buf[n++] = (char)c;
	}
	buf[n] = 0;
	return (int)n;
}
