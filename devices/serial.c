/* serial.c — an 8250/16550A UART, complete enough for Linux's 8250 driver (its
 * autoconfig probe: scratch, IER, loopback MSR test, FIFO detection through IIR)
 * and for earlycon: THR/RBR, IER, IIR, FCR, LCR with DLAB, MCR (with loopback),
 * LSR, MSR and SCR. Transmission is instant (THR is always empty again after a
 * write), so THR-empty interrupts follow each write. Host input is queued in a
 * 64 KiB receive buffer that stands in for the 16-byte FIFO; the RX interrupt is
 * "data available" once the trigger level is reached and "character timeout"
 * below it (as the real chip would report after a few character times). The
 * interrupt rules follow the 16550A datasheet (and QEMU's serial.c). */
#include "devices/serial.h"
#include "vmm/bus.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define UART_IIR_CTI 0x0c

struct serial {
	pthread_mutex_t lock;
	struct serial_hooks hooks;
	uint8_t ier, iir, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_ipending;
	int irq_level;
	/* Receive buffer (ring). */
	uint8_t *rx;
	size_t rx_head, rx_count;
	/* For serial_create(). */
	struct vm *vm;
	int gsi;
	uint64_t base;
};

static unsigned rx_trigger(const struct serial *s)
{
	static const unsigned levels[4] = {1, 4, 8, 14};
	return levels[s->fcr >> 6];
}

/* Recomputes IIR and the interrupt line (lock held). */
static void update_irq(struct serial *s)
{
	uint8_t id = UART_IIR_NO_INT;
	if ((s->ier & UART_IER_RLSI) && (s->lsr & (UART_LSR_OE | UART_LSR_BI)))
		id = UART_IIR_RLSI;
	else if ((s->ier & UART_IER_RDI) && (s->lsr & UART_LSR_DR))
		id = (!(s->fcr & UART_FCR_ENABLE) || s->rx_count >= rx_trigger(s)) ?
			UART_IIR_RDI : UART_IIR_CTI;
	else if ((s->ier & UART_IER_THRI) && s->thr_ipending)
		id = UART_IIR_THRI;
	else if ((s->ier & UART_IER_MSI) && (s->msr & 0x0f))
		id = UART_IIR_MSI;
	s->iir = id | ((s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0);
	int level = id != UART_IIR_NO_INT;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->hooks.irq)
			s->hooks.irq(s->hooks.opaque, level);
	}
}

static size_t rx_push(struct serial *s, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n && s->rx_count < SERIAL_RX_CAP) {
		s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_CAP] = p[done++];
		s->rx_count++;
	}
	if (done < n)
		s->lsr |= UART_LSR_OE;
	if (s->rx_count)
		s->lsr |= UART_LSR_DR;
	return done;
}

/* MSR while in loopback mirrors the MCR outputs; otherwise the "modem" is always
 * there (CTS, DSR, DCD). Delta bits are set when a line changes. */
static void update_msr(struct serial *s)
{
	uint8_t lines;
	if (s->mcr & UART_MCR_LOOP)
		lines = ((s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
			((s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
			((s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
			((s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
	else
		lines = UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
	uint8_t old = s->msr, delta = 0;
	if ((old ^ lines) & UART_MSR_CTS)
		delta |= UART_MSR_DCTS;
	if ((old ^ lines) & UART_MSR_DSR)
		delta |= UART_MSR_DDSR;
	if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
		delta |= UART_MSR_TERI;
	if ((old ^ lines) & UART_MSR_DCD)
		delta |= UART_MSR_DDCD;
	s->msr = lines | (old & 0x0f) | delta;
}

static void serial_reset_locked(struct serial *s)
{
	s->ier = s->fcr = s->lcr = s->mcr = s->scr = s->dlm = 0;
	s->dll = 12; /* 9600 baud */
	s->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	s->msr = UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
	s->thr_ipending = false;
	s->rx_head = s->rx_count = 0;
	update_irq(s);
}

static void serial_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = 0xff;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RBR:
		if (s->lcr & UART_LCR_DLAB) {
			v = s->dll;
			break;
		}
		v = 0;
		if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_CAP;
			s->rx_count--;
		}
		if (!s->rx_count)
			s->lsr &= ~UART_LSR_DR;
		update_irq(s);
		break;
	case UART_IER:
		v = (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR:
		v = s->iir;
		/* Reading IIR while it reports THR-empty acknowledges that interrupt. */
		if ((v & 0x0f) == UART_IIR_THRI) {
			s->thr_ipending = false;
			update_irq(s);
		}
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		v = s->lsr;
		/* Error bits clear on read. */
		if (s->lsr & (UART_LSR_OE | UART_LSR_BI)) {
			s->lsr &= ~(UART_LSR_OE | UART_LSR_BI);
			update_irq(s);
		}
		break;
	case UART_MSR:
		v = s->msr;
		if (s->msr & 0x0f) {
			s->msr &= 0xf0;
			update_irq(s);
		}
		break;
	case UART_SCR:
		v = s->scr;
		break;
	}
	pthread_mutex_unlock(&s->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void serial_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = *(const uint8_t *)data, out = 0;
	bool emit = false;
	(void)len;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_THR:
		if (s->lcr & UART_LCR_DLAB) {
			s->dll = v;
			break;
		}
		if (s->mcr & UART_MCR_LOOP) {
			rx_push(s, &v, 1);
		} else {
			out = v;
			emit = true;
		}
		/* Sent at once: THR and the shift register are empty again. */
		s->lsr |= UART_LSR_THRE | UART_LSR_TEMT;
		s->thr_ipending = true;
		update_irq(s);
		break;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = v;
			break;
		}
		{
			uint8_t old = s->ier;
			s->ier = v & 0x0f;
			/* Enabling THRI while THR is empty raises the interrupt at once. */
			if ((s->ier & UART_IER_THRI) && !(old & UART_IER_THRI) &&
			    (s->lsr & UART_LSR_THRE))
				s->thr_ipending = true;
			update_irq(s);
		}
		break;
	case UART_FCR:
		if (v & UART_FCR_CLEAR_RCVR) {
			s->rx_head = s->rx_count = 0;
			s->lsr &= ~UART_LSR_DR;
		}
		/* XMIT clear: nothing is ever pending in the transmitter. */
		s->fcr = v & (UART_FCR_ENABLE | 0xc0);
		if (!(v & UART_FCR_ENABLE))
			s->fcr = 0;
		update_irq(s);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		update_msr(s);
		update_irq(s);
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only (factory test modes are not modelled) */
	case UART_SCR:
		s->scr = v;
		break;
	}
	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: the console callback may feed input back to us. */
	if (emit && s->hooks.out)
		s->hooks.out(s->hooks.opaque, (const char *)&out, 1);
}

const struct bus_ops serial_bus_ops = {
	.read = serial_read,
	.write = serial_write,
};

size_t serial_receive(struct serial *s, const void *data, size_t len)
{
	pthread_mutex_lock(&s->lock);
	size_t n = rx_push(s, data, len);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

int serial_new(const struct serial_hooks *hooks, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return pv_error(ENOMEM, "serial: out of memory");
	s->rx = malloc(SERIAL_RX_CAP);
	if (!s->rx) {
		free(s);
		return pv_error(ENOMEM, "serial: out of memory");
	}
	if (hooks)
		s->hooks = *hooks;
	pthread_mutex_init(&s->lock, NULL);
	serial_reset_locked(s);
	*out = s;
	return 0;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->rx);
	free(s);
}

/* ---- snapshot ---- */

static const char *const reg_names[] = {"ier", "fcr", "lcr", "mcr", "lsr", "msr", "scr",
					"dll", "dlm", "thr_ipending"};

static uint8_t *reg_ptr(struct serial *s, size_t i, uint8_t *thr)
{
	uint8_t *regs[] = {&s->ier, &s->fcr, &s->lcr, &s->mcr, &s->lsr, &s->msr, &s->scr,
			   &s->dll, &s->dlm, thr};
	return regs[i];
}

int serial_save(struct serial *s, struct msgpack_packer *pk)
{
	pthread_mutex_lock(&s->lock);
	uint8_t thr = s->thr_ipending;
	msgpack_pack_map(pk, PV_ARRAY_SIZE(reg_names) + 1);
	for (size_t i = 0; i < PV_ARRAY_SIZE(reg_names); i++) {
		msgpack_pack_str_with_body(pk, reg_names[i], strlen(reg_names[i]));
		msgpack_pack_uint8(pk, *reg_ptr(s, i, &thr));
	}
	msgpack_pack_str_with_body(pk, "rx", 2);
	msgpack_pack_bin(pk, s->rx_count);
	size_t first = PV_MIN(s->rx_count, SERIAL_RX_CAP - s->rx_head);
	msgpack_pack_bin_body(pk, s->rx + s->rx_head, first);
	msgpack_pack_bin_body(pk, s->rx, s->rx_count - first);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
		    !memcmp(kv->key.via.str.ptr, key, kl))
			return &kv->val;
	}
	return NULL;
}

int serial_load(struct serial *s, const struct msgpack_object *st)
{
	if (!st || st->type != MSGPACK_OBJECT_MAP)
		return pv_error(EINVAL, "serial state: not a map");
	uint8_t vals[PV_ARRAY_SIZE(reg_names)];
	for (size_t i = 0; i < PV_ARRAY_SIZE(reg_names); i++) {
		const msgpack_object *o = map_get(st, reg_names[i]);
		if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > 0xff)
			return pv_error(EINVAL, "serial state: missing or bad \"%s\"", reg_names[i]);
		vals[i] = (uint8_t)o->via.u64;
	}
	const msgpack_object *rx = map_get(st, "rx");
	if (!rx || rx->type != MSGPACK_OBJECT_BIN || rx->via.bin.size > SERIAL_RX_CAP)
		return pv_error(EINVAL, "serial state: missing or bad \"rx\"");
	pthread_mutex_lock(&s->lock);
	uint8_t thr = 0;
	for (size_t i = 0; i < PV_ARRAY_SIZE(reg_names); i++)
		*reg_ptr(s, i, &thr) = vals[i];
	s->thr_ipending = thr != 0;
	s->rx_head = 0;
	s->rx_count = rx->via.bin.size;
	memcpy(s->rx, rx->via.bin.ptr, s->rx_count);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- attached to a VM ---- */

static void vm_serial_irq(void *opaque, int level)
{
	struct serial *s = opaque;
	vm_irq_line(s->vm, s->gsi, level);
}

static void vm_serial_out(void *opaque, const char *buf, size_t len)
{
	struct serial *s = opaque;
	vm_console_output(s->vm, buf, len);
}

static void vm_serial_in(void *opaque, const void *data, size_t len)
{
	size_t n = serial_receive(opaque, data, len);
	if (n < len)
		pv_log("serial: guest is not reading its console; dropped %zu bytes", len - n);
}

static void vm_serial_cleanup(void *opaque)
{
	serial_free(opaque);
}

/* The UART on `bus` (the port bus on x86, the MMIO bus on arm64: one byte per
 * register either way, reg-shift 0). */
static int serial_attach(struct vm *vm, struct bus *bus, uint64_t base, int irq,
			 struct serial **out)
{
	struct serial *s;
	int err = serial_new(NULL, &s);
	if (err)
		return err;
	s->vm = vm;
	s->gsi = irq;
	s->base = base;
	s->hooks = (struct serial_hooks){vm_serial_irq, vm_serial_out, s};
	err = bus_register(bus, base, 8, &serial_bus_ops, s);
	if (err) {
		serial_free(s);
		return pv_error_prefix(err, "serial at 0x%" PRIx64, base);
	}
	vm_console_set_input(vm, 0, vm_serial_in, s);
	vm_add_cleanup(vm, vm_serial_cleanup, s);
	if (out)
		*out = s;
	return 0;
}

int serial_create(struct vm *vm, uint16_t base, int irq, struct serial **out)
{
	return serial_attach(vm, vm_pio_bus(vm), base, irq, out);
}

int serial_create_mmio(struct vm *vm, uint64_t base, int irq, struct serial **out)
{
	return serial_attach(vm, vm_mmio_bus(vm), base, irq, out);
}
