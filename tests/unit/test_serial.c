/* test_serial.c — the 8250/16550A UART's registers, driven through a port bus
 * with a fake interrupt line and output sink (no KVM): reset values, DLAB, scratch,
 * transmit, THR-empty interrupt rules, RX data and FIFO trigger levels, IIR
 * priorities, LSR bits and overrun, MCR loopback with MSR, and the probe sequence
 * Linux's 8250 driver uses to recognise a 16550A. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/serial.h"
#include "vmm/bus.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define BASE 0x3f8

struct fake {
	struct bus *bus;
	struct serial *s;
	int level, raises, lowers;
	char out[256];
	size_t nout;
};

static void fake_irq(void *opaque, int level)
{
	struct fake *f = opaque;
	f->level = level;
	if (level)
		f->raises++;
	else
		f->lowers++;
}

static void fake_out(void *opaque, const char *buf, size_t len)
{
	struct fake *f = opaque;
	memcpy(f->out + f->nout, buf, len);
	f->nout += len;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct serial_hooks h = {fake_irq, fake_out, f};
	f->bus = bus_create("pio");
	if (serial_new(&h, &f->s) || bus_register(f->bus, BASE, 8, &serial_bus_ops, f->s))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	bus_destroy(f->bus);
	serial_free(f->s);
	free(f);
	return 0;
}

static uint8_t rd(struct fake *f, int reg)
{
	uint8_t v = 0;
	assert_true(bus_access(f->bus, BASE + reg, &v, 1, false));
	return v;
}

static void wr(struct fake *f, int reg, uint8_t v)
{
	assert_true(bus_access(f->bus, BASE + reg, &v, 1, true));
}

static void test_reset_state(void **state)
{
	struct fake *f = *state;
	assert_int_equal(rd(f, UART_IER), 0);
	assert_int_equal(rd(f, UART_IIR), UART_IIR_NO_INT);
	assert_int_equal(rd(f, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
	assert_int_equal(rd(f, UART_MSR) & 0xf0, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
	assert_int_equal(f->level, 0);
}

static void test_dlab_switches_divisor_latch(void **state)
{
	struct fake *f = *state;
	wr(f, UART_IER, UART_IER_RDI);
	wr(f, UART_LCR, UART_LCR_DLAB | 0x03);
	wr(f, UART_DLL, 0x01); /* 115200 */
	wr(f, UART_DLM, 0x00);
	assert_int_equal(rd(f, UART_DLL), 0x01);
	assert_int_equal(rd(f, UART_DLM), 0x00);
	assert_int_equal(f->nout, 0);             /* DLL write is not a transmit */
	wr(f, UART_LCR, 0x03);                    /* 8N1, DLAB off */
	assert_int_equal(rd(f, UART_LCR), 0x03);
	assert_int_equal(rd(f, UART_IER), UART_IER_RDI); /* IER kept its value */
	wr(f, UART_THR, 'x');
	assert_int_equal(f->nout, 1);
	assert_int_equal(f->out[0], 'x');
}

static void test_scratch_register(void **state)
{
	struct fake *f = *state;
	wr(f, UART_SCR, 0x5a);
	assert_int_equal(rd(f, UART_SCR), 0x5a);
	wr(f, UART_SCR, 0xa5);
	assert_int_equal(rd(f, UART_SCR), 0xa5);
}

static void test_transmit_keeps_thr_empty(void **state)
{
	struct fake *f = *state;
	const char *msg = "hello\r\n";
	for (const char *p = msg; *p; p++) {
		wr(f, UART_THR, *p);
		assert_true(rd(f, UART_LSR) & UART_LSR_THRE);
		assert_true(rd(f, UART_LSR) & UART_LSR_TEMT);
	}
	assert_int_equal(f->nout, strlen(msg));
	assert_memory_equal(f->out, msg, strlen(msg));
	assert_int_equal(f->level, 0); /* no interrupts enabled */
}

static void test_thri_raised_on_enable_and_cleared_by_iir_read(void **state)
{
	struct fake *f = *state;
	wr(f, UART_IER, UART_IER_THRI);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	/* Reading IIR acknowledged it. */
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
	/* Each transmitted byte empties THR again: raised again. */
	wr(f, UART_THR, 'a');
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	assert_int_equal(f->level, 0);
	/* Disabling THRI drops a pending one. */
	wr(f, UART_THR, 'b');
	assert_int_equal(f->level, 1);
	wr(f, UART_IER, 0);
	assert_int_equal(f->level, 0);
}

static void test_rx_data_interrupt_and_lsr_dr(void **state)
{
	struct fake *f = *state;
	assert_int_equal(serial_receive(f->s, "ok", 2), 2);
	assert_true(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(f->level, 0); /* RDI not enabled yet */
	wr(f, UART_IER, UART_IER_RDI);
	assert_int_equal(f->level, 1);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	assert_int_equal(rd(f, UART_RBR), 'o');
	assert_int_equal(f->level, 1); /* one byte left */
	assert_int_equal(rd(f, UART_RBR), 'k');
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(f->level, 0);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_NO_INT);
}

static void test_iir_priorities(void **state)
{
	struct fake *f = *state;
	wr(f, UART_IER, UART_IER_RDI | UART_IER_THRI | UART_IER_RLSI | UART_IER_MSI);
	/* THRI pending (enabled while empty) -> THRI. */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_THRI);
	wr(f, UART_THR, 'z'); /* THRI pending again */
	serial_receive(f->s, "r", 1);
	/* RX data outranks THR empty. */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	/* Overrun (line status) outranks RX data. */
	char big[SERIAL_RX_CAP];
	memset(big, 'q', sizeof(big));
	assert_int_equal(serial_receive(f->s, big, sizeof(big)), SERIAL_RX_CAP - 1);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RLSI);
	uint8_t lsr = rd(f, UART_LSR);
	assert_true(lsr & UART_LSR_OE);
	assert_true(lsr & UART_LSR_DR);
	assert_false(rd(f, UART_LSR) & UART_LSR_OE); /* cleared by reading LSR */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	/* Drain the receiver: THRI is next. */
	wr(f, UART_FCR, UART_FCR_CLEAR_RCVR);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_THRI); /* acknowledges it */
	/* Modem status change is the lowest: loopback toggling RTS changes CTS. */
	wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_MSI);
	assert_true(rd(f, UART_MSR) & (UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD));
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_NO_INT); /* MSR read cleared */
	assert_int_equal(f->level, 0);
}

static void test_fifo_trigger_level_and_timeout_id(void **state)
{
	struct fake *f = *state;
	/* FIFO on, trigger level 8 (0x80): FIFO bits show in IIR. */
	wr(f, UART_FCR, UART_FCR_ENABLE | 0x80);
	assert_int_equal(rd(f, UART_IIR) & UART_IIR_FIFO, UART_IIR_FIFO);
	wr(f, UART_IER, UART_IER_RDI);
	serial_receive(f->s, "1234", 4);
	/* Below the trigger level: character-timeout identification. */
	assert_int_equal(rd(f, UART_IIR) & 0x0f, 0x0c);
	serial_receive(f->s, "5678", 4);
	assert_int_equal(rd(f, UART_IIR) & 0x0f, UART_IIR_RDI);
	/* Bytes come out in order. */
	char got[8];
	for (int i = 0; i < 8; i++)
		got[i] = rd(f, UART_RBR);
	assert_memory_equal(got, "12345678", 8);
	assert_int_equal(f->level, 0);
	/* FIFO off: IIR top bits clear again. */
	wr(f, UART_FCR, 0);
	assert_int_equal(rd(f, UART_IIR) & UART_IIR_FIFO, 0);
}

static void test_fcr_clears_receiver(void **state)
{
	struct fake *f = *state;
	wr(f, UART_FCR, UART_FCR_ENABLE);
	serial_receive(f->s, "abc", 3);
	wr(f, UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
	assert_false(rd(f, UART_LSR) & UART_LSR_DR);
	serial_receive(f->s, "d", 1);
	assert_int_equal(rd(f, UART_RBR), 'd');
}

static void test_loopback_and_msr(void **state)
{
	struct fake *f = *state;
	/* Linux's probe: MCR = LOOP|OUT2|RTS must show DCD|CTS in MSR's top bits. */
	wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
	assert_int_equal(rd(f, UART_MSR) & 0xf0, UART_MSR_DCD | UART_MSR_CTS);
	wr(f, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
	assert_int_equal(rd(f, UART_MSR) & 0xf0, UART_MSR_DSR | UART_MSR_RI);
	/* Transmitted bytes come back on the receiver, not out of the port. */
	wr(f, UART_THR, 'L');
	assert_int_equal(f->nout, 0);
	assert_true(rd(f, UART_LSR) & UART_LSR_DR);
	assert_int_equal(rd(f, UART_RBR), 'L');
	/* Loopback off: the modem lines are up again and output flows. */
	wr(f, UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
	assert_int_equal(rd(f, UART_MSR) & 0xf0, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
	wr(f, UART_THR, 'M');
	assert_int_equal(f->nout, 1);
	assert_int_equal(rd(f, UART_MCR), UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
}

static void test_linux_16550a_autoconfig(void **state)
{
	struct fake *f = *state;
	/* Roughly drivers/tty/serial/8250/8250_port.c autoconfig(). */
	wr(f, UART_IER, 0);
	assert_int_equal(rd(f, UART_IER) & 0x0f, 0);
	wr(f, UART_IER, 0x0f);
	assert_int_equal(rd(f, UART_IER) & 0x0f, 0x0f);
	wr(f, UART_IER, 0);
	wr(f, UART_FCR, UART_FCR_ENABLE);
	uint8_t iir = rd(f, UART_IIR);
	assert_int_equal(iir >> 6, 3); /* "16550A" */
	wr(f, UART_LCR, 0xbf); /* EFR probe on a 16650: must not break anything */
	wr(f, UART_LCR, 0x03);
	assert_int_equal(rd(f, UART_LCR), 0x03);
}

static void test_save_load_round_trip(void **state)
{
	struct fake *f = *state;
	wr(f, UART_LCR, UART_LCR_DLAB);
	wr(f, UART_DLL, 0x03);
	wr(f, UART_LCR, 0x1b);
	wr(f, UART_FCR, UART_FCR_ENABLE | 0x40);
	wr(f, UART_MCR, UART_MCR_OUT2 | UART_MCR_RTS);
	wr(f, UART_SCR, 0x99);
	wr(f, UART_IER, UART_IER_RDI);
	serial_receive(f->s, "snap", 4);
	assert_int_equal(rd(f, UART_RBR), 's'); /* ring head no longer at 0 */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(serial_save(f->s, &pk), 0);

	struct fake g = {0};
	struct serial_hooks h = {fake_irq, fake_out, &g};
	assert_int_equal(serial_new(&h, &g.s), 0);
	g.bus = bus_create("pio");
	assert_int_equal(bus_register(g.bus, BASE, 8, &serial_bus_ops, g.s), 0);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(serial_load(g.s, &up.data), 0);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);

	/* Same registers, same pending input, interrupt line raised again. */
	assert_int_equal(g.level, 1);
	assert_int_equal(rd(&g, UART_LCR), 0x1b);
	assert_int_equal(rd(&g, UART_SCR), 0x99);
	assert_int_equal(rd(&g, UART_MCR), UART_MCR_OUT2 | UART_MCR_RTS);
	assert_int_equal(rd(&g, UART_IER), UART_IER_RDI);
	/* 3 bytes are below the trigger level of 4: character timeout. */
	assert_int_equal(rd(&g, UART_IIR), UART_IIR_FIFO | 0x0c);
	wr(&g, UART_LCR, 0x9b);
	assert_int_equal(rd(&g, UART_DLL), 0x03);
	wr(&g, UART_LCR, 0x1b);
	char got[3];
	for (int i = 0; i < 3; i++)
		got[i] = rd(&g, UART_RBR);
	assert_memory_equal(got, "nap", 3);
	assert_false(rd(&g, UART_LSR) & UART_LSR_DR);
	assert_int_equal(g.level, 0);

	/* A malformed state is refused with a message. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "ier", 3);
	msgpack_pack_uint8(&pk, 1);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(serial_load(g.s, &up.data), -EINVAL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	bus_destroy(g.bus);
	serial_free(g.s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_reset_state),
		T(test_dlab_switches_divisor_latch),
		T(test_scratch_register),
		T(test_transmit_keeps_thr_empty),
		T(test_thri_raised_on_enable_and_cleared_by_iir_read),
		T(test_rx_data_interrupt_and_lsr_dr),
		T(test_iir_priorities),
		T(test_fifo_trigger_level_and_timeout_id),
		T(test_fcr_clears_receiver),
		T(test_loopback_and_msr),
		T(test_linux_16550a_autoconfig),
		T(test_save_load_round_trip),
	};
	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
