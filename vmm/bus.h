/* bus.h — port-I/O and MMIO dispatch. A device registers [base, base+len) with an
 * ops table; a vCPU exit is routed to the device that owns the address with the
 * offset inside its range. Unclaimed accesses are logged once per address and read
 * as all-ones. Registration may happen while vCPUs run (hot-plug): lookups take a
 * read lock. */
#ifndef PROVIUM_BUS_H
#define PROVIUM_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	void (*read)(void *opaque, uint64_t off, void *data, unsigned len);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned len);
};

struct bus;

struct bus *bus_create(const char *name); /* "pio" or "mmio", for messages */
void bus_destroy(struct bus *b);
/* -EEXIST when the range overlaps one already registered. */
int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque);
int bus_unregister(struct bus *b, uint64_t base);
/* Returns true when a device claimed the access; otherwise a read fills data with
 * 0xff bytes, and the first unclaimed access to each address is logged. */
bool bus_access(struct bus *b, uint64_t addr, void *data, unsigned len, bool is_write);

#endif
