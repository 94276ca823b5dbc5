/* serial.h — the 8250/16550A UART (devices/serial.c). serial_create() attaches one
 * to a VM (port I/O range, IRQ via vm_irq_line, output to the console ring, input
 * from vm_console_input). serial_new() makes a free-standing one with callbacks, so
 * the unit tests drive the registers through a bus without KVM. */
#ifndef PROVIUM_SERIAL_H
#define PROVIUM_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct serial;
struct bus_ops;

struct serial_hooks {
	void (*irq)(void *opaque, int level);                     /* line level changes */
	void (*out)(void *opaque, const char *buf, size_t len);   /* transmitted bytes */
	void *opaque;
};

/* Register offsets and bits (as in Linux's serial_reg.h). */
enum {
	UART_RBR = 0, UART_THR = 0, UART_DLL = 0, UART_IER = 1, UART_DLM = 1,
	UART_IIR = 2, UART_FCR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5,
	UART_MSR = 6, UART_SCR = 7,
};
#define UART_IER_RDI   0x01
#define UART_IER_THRI  0x02
#define UART_IER_RLSI  0x04
#define UART_IER_MSI   0x08
#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI   0x00
#define UART_IIR_THRI  0x02
#define UART_IIR_RDI   0x04
#define UART_IIR_RLSI  0x06
#define UART_IIR_FIFO  0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_LCR_DLAB  0x80
#define UART_MCR_DTR   0x01
#define UART_MCR_RTS   0x02
#define UART_MCR_OUT1  0x04
#define UART_MCR_OUT2  0x08
#define UART_MCR_LOOP  0x10
#define UART_LSR_DR    0x01
#define UART_LSR_OE    0x02
#define UART_LSR_BI    0x10
#define UART_LSR_THRE  0x20
#define UART_LSR_TEMT  0x40
#define UART_MSR_DCTS  0x01
#define UART_MSR_DDSR  0x02
#define UART_MSR_TERI  0x04
#define UART_MSR_DDCD  0x08
#define UART_MSR_CTS   0x10
#define UART_MSR_DSR   0x20
#define UART_MSR_RI    0x40
#define UART_MSR_DCD   0x80

/* Host-side receive buffer; bytes beyond it are dropped (LSR overrun). */
#define SERIAL_RX_CAP 65536

int serial_new(const struct serial_hooks *hooks, struct serial **out);
void serial_free(struct serial *s);
/* The bus ops to register with `opaque` = the serial (8 ports). */
extern const struct bus_ops serial_bus_ops;
/* Host input: queues bytes for the guest to read from RBR. Returns bytes queued. */
size_t serial_receive(struct serial *s, const void *data, size_t len);

/* A UART on the VM's port bus at `base` raising ISA `irq`; freed by vm_destroy. */
int serial_create(struct vm *vm, uint16_t base, int irq, struct serial **out);
/* The same UART on the VM's MMIO bus (arm64's ns16550a, reg-shift 0). */
int serial_create_mmio(struct vm *vm, uint64_t base, int irq, struct serial **out);
/* The VM's UART at 0x3f8 (made by vm_create), for snapshots. */
struct serial *vm_serial(struct vm *vm);

/* Snapshot: the registers and unread input as one msgpack map, and back. Loading
 * re-evaluates the interrupt line. */
struct msgpack_packer;
struct msgpack_object;
int serial_save(struct serial *s, struct msgpack_packer *pk);
int serial_load(struct serial *s, const struct msgpack_object *state);

#endif
