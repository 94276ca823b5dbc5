/* fuzz_serial.h — the 8250/16550A UART as a fuzz target: the guest's port reads
 * and writes at every register offset (DLAB, loopback, FIFO control, scratch,
 * interrupt enables) interleaved with host input of any size and save + load of
 * its state. Each op is 3 bytes: [op] [offset] [value]; op % 4: 0 write,
 * 1 read, 2 host input of value * 300 bytes, 3 save and load (its own state must
 * load). At the end the line must be low when IIR says no interrupt is pending. Shared by the libFuzzer harness and the corpus replay. */
#ifndef PROVIUM_FUZZ_SERIAL_H
#define PROVIUM_FUZZ_SERIAL_H

#include "devices/serial.h"
#include "vmm/bus.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fzs {
	int level;
	uint64_t out;
};

static void fzs_irq(void *opaque, int level)
{
	((struct fzs *)opaque)->level = level;
}

static void fzs_out(void *opaque, const char *buf, size_t len)
{
	((struct fzs *)opaque)->out += len + (uint8_t)buf[0];
}

static void fzs_save_load(struct serial *s)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&up);
	if (serial_save(s, (struct msgpack_packer *)&pk) == 0 &&
	    msgpack_unpack_next(&up, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    serial_load(s, (const struct msgpack_object *)&up.data) < 0)
		abort(); /* its own state must load */
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

static inline int pv_fuzz_serial(const uint8_t *data, size_t size)
{
	static uint8_t input[255 * 300];
	struct fzs x = {0};
	struct serial_hooks h = {fzs_irq, fzs_out, &x};
	struct serial *s;
	if (serial_new(&h, &s) < 0)
		abort();
	for (size_t i = 0; i + 1 < size; i += 3) {
		uint8_t op = data[i], off = data[i + 1] & 7, v = i + 2 < size ? data[i + 2] : 0;
		switch (op % 4) {
		case 0:
			serial_bus_ops.write(s, off, &v, 1);
			break;
		case 1: {
			uint8_t r[4];
			serial_bus_ops.read(s, off, r, 1);
			break;
		}
		case 2:
			memset(input, op, (size_t)v * 300);
			serial_receive(s, input, (size_t)v * 300);
			break;
		case 3:
			fzs_save_load(s);
			break;
		}
	}
	/* Reading IIR acknowledges a THR-empty interrupt, so only once, at the end. */
	uint8_t iir;
	serial_bus_ops.read(s, UART_IIR, &iir, 1);
	if ((iir & UART_IIR_NO_INT) && x.level) {
		fprintf(stderr, "fuzz_serial: line high with IIR 0x%02x\n", iir);
		abort();
	}
	serial_free(s);
	return 0;
}

#endif
