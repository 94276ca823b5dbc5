/* platform.c — the PC odds and ends every VM has:
 *  - the exit port 0xf4 (kvm-unit-tests' convention): a 1/2/4-byte write ends the
 *    VM with VM_EXIT_PORT and the written value as the exit code;
 *  - the i8042 at 0x60/0x64, only as far as reboot needs it: command 0xfe (pulse
 *    reset) ends the VM with VM_EXIT_RESET. Its status reads 0x01 (a byte waiting,
 *    input buffer empty) and its data port 0xff, so Linux's i8042 probe flushes 16
 *    bytes and says "No controller found" at once (status 0 made it wait for a
 *    reply to "read CTR" 10000 times, 0.5 s and 10 000 exits per boot), while the
 *    reboot path's kb_wait(), which waits for an empty input buffer, passes at once
 *    (all-ones, an absent chip, would make it poll 65536 times);
 *  - quiet sinks for ports Linux probes or uses as delays: 0x80/0xed (POST/delay),
 *    the PIC/PIT/ELCR ports the in-kernel irqchip normally handles, the other COM
 *    ports and PCI config ports (no device: reads all-ones). Without them each
 *    would be logged as unclaimed. */
#include "devices/platform.h"
#include "vmm/bus.h"
#include "vmm/util.h"
#include "vmm/vmm.h"

#include <stdio.h>
#include <string.h>

/* The guest's exit: its value (up to 32 bits) becomes the VM's exit code. */
static void guest_exit(struct vm *vm, const void *data, unsigned len, const char *where)
{
	uint32_t v = 0;
	memcpy(&v, data, len < 4 ? len : 4);
	char detail[64];
	snprintf(detail, sizeof(detail), "guest wrote %u to %s", v, where);
	vm_request_exit(vm, VM_EXIT_PORT, (int)v, detail);
}

static void exit_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	char where[32];
	snprintf(where, sizeof(where), "exit port 0x%x", PLATFORM_EXIT_PORT);
	guest_exit(opaque, data, len, where);
}

static const struct bus_ops exit_ops = {.write = exit_write};

/* arm64 has no ports: the same exit as a 32-bit register on the MMIO bus. */
static void exit_mmio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	(void)off;
	guest_exit(opaque, data, len, "the exit register");
}

static const struct bus_ops exit_mmio_ops = {.write = exit_mmio_write};

int platform_create_exit_mmio(struct vm *vm, uint64_t gpa)
{
	int err = bus_register(vm_mmio_bus(vm), gpa, 4, &exit_mmio_ops, vm);
	return err ? pv_error_prefix(err, "exit register") : 0;
}

static void i8042_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	(void)opaque;
	/* 0x61 (inside the range; the in-kernel PIT normally takes it) reads 0 */
	memset(data, off == 4 ? 0x01 : off == 0 ? 0xff : 0, len);
}

static void i8042_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct vm *vm = opaque;
	(void)len;
	if (off == 4 && *(const uint8_t *)data == 0xfe)
		vm_request_exit(vm, VM_EXIT_RESET, 0, "guest reset the machine through the i8042 (0xfe to port 0x64)");
}

static const struct bus_ops i8042_ops = {.read = i8042_read, .write = i8042_write};

/* Reads as all-ones (bus default), ignores writes. */
static const struct bus_ops quiet_ops = {0};

static const struct {
	uint16_t base, len;
} quiet_ports[] = {
	{0x20, 2}, {0xa0, 2},          /* PIC */
	{0x40, 4},                     /* PIT */
	{0x4d0, 2},                    /* ELCR */
	{0x61, 1},                     /* NMI status / speaker */
	{0x80, 1}, {0xed, 1},          /* POST code, io delay */
	{0x2f8, 8}, {0x3e8, 8}, {0x2e8, 8}, /* COM2-4: not present */
	{0xcf8, 8},                    /* PCI config: no PCI bus */
};

int platform_create(struct vm *vm)
{
	struct bus *pio = vm_pio_bus(vm);
	int err = bus_register(pio, PLATFORM_EXIT_PORT, 4, &exit_ops, vm);
	if (err)
		return pv_error_prefix(err, "exit port");
	/* 0x60..0x64 as one range; 0x61 lies inside it and reads 0 like the rest. */
	if ((err = bus_register(pio, 0x60, 5, &i8042_ops, vm)))
		return pv_error_prefix(err, "i8042");
	for (size_t i = 0; i < PV_ARRAY_SIZE(quiet_ports); i++) {
		if (quiet_ports[i].base == 0x61)
			continue; /* covered by the i8042 range */
		err = bus_register(pio, quiet_ports[i].base, quiet_ports[i].len, &quiet_ops, NULL);
		if (err)
			return pv_error_prefix(err, "platform port 0x%x", quiet_ports[i].base);
	}
	return 0;
}
