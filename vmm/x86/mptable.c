/* mptable.c — the Intel MultiProcessor Specification 1.4 tables that tell Linux (and
 * the test guest) how many vCPUs there are and how ISA interrupts reach the IOAPIC:
 * a floating pointer ("_MP_") followed by the configuration table ("PCMP") with one
 * processor entry per vCPU, the ISA bus, the IOAPIC, IRQ 0..15 routing and the
 * local interrupt (LINT0 ExtINT, LINT1 NMI) entries. Layout and checksums are checked
 * by tests/unit/test_mptable.c, which parses the bytes back. */
#include "vmm/x86/boot.h"
#include "vmm/util.h"

#include <errno.h>
#include <string.h>

#define MP_LAPIC_BASE   0xfee00000u
#define MP_IOAPIC_BASE  0xfec00000u
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VER   0x11
#define MP_SPEC_REV     4        /* 1.4 */

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };

struct mpf {                 /* floating pointer, 16 bytes */
	char signature[4];
	uint32_t physptr;
	uint8_t length;          /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_header {          /* configuration table header, 44 bytes */
	char signature[4];
	uint16_t length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {             /* 20 bytes */
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t signature, featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {             /* 8 bytes */
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {          /* 8 bytes */
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {          /* 8 bytes: IO (type 3) and local (type 4) interrupts */
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf) == 16, "mpf");
_Static_assert(sizeof(struct mpc_header) == 44, "mpc_header");
_Static_assert(sizeof(struct mpc_cpu) == 20, "mpc_cpu");

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

size_t mptable_size(unsigned cpus)
{
	return sizeof(struct mpf) + sizeof(struct mpc_header) +
	       cpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + 16 * sizeof(struct mpc_intsrc) +
	       2 * sizeof(struct mpc_intsrc);
}

int mptable_write(void *memv, uint64_t mem_size, uint64_t gpa, unsigned cpus)
{
	unsigned char *mem = memv, *p;
	struct mpf *mpf;
	struct mpc_header *hdr;
	size_t size = mptable_size(cpus);
	uint16_t count = 0;

	if (cpus < 1 || cpus > MPTABLE_MAX_CPUS)
		return pv_error(EINVAL, "MP table: %u vCPUs is out of range (1..%d)", cpus, MPTABLE_MAX_CPUS);
	if (gpa & 15)
		return pv_error(EINVAL, "MP table: address %#llx is not 16-byte aligned",
				(unsigned long long)gpa);
	if (gpa > mem_size || size > mem_size - gpa || gpa + size > 0xffffffffull)
		return pv_error(ENOMEM, "MP table: %zu bytes at %#llx do not fit in guest RAM (%#llx bytes)",
				size, (unsigned long long)gpa, (unsigned long long)mem_size);
	memset(mem + gpa, 0, size);

	mpf = (struct mpf *)(mem + gpa);
	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(gpa + sizeof(*mpf));
	mpf->length = 1;
	mpf->spec_rev = MP_SPEC_REV;
	/* feature[0] = 0: a configuration table follows; feature[1] bit 7 clear: no
	 * IMCR, virtual-wire mode. */
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));

	hdr = (struct mpc_header *)(mpf + 1);
	p = (unsigned char *)(hdr + 1);
	for (unsigned i = 0; i < cpus; i++, count++) {
		struct mpc_cpu *c = (struct mpc_cpu *)p;

		c->type = MP_PROCESSOR;
		c->apicid = (uint8_t)i;
		c->apicver = MP_APIC_VERSION;
		c->cpuflag = 1 | (i == 0 ? 2 : 0);  /* enabled, bootstrap processor */
		c->signature = 0x600;               /* family 6 */
		c->featureflag = 0x201;             /* FPU, APIC */
		p += sizeof(*c);
	}

	struct mpc_bus *bus = (struct mpc_bus *)p;
	bus->type = MP_BUS;
	bus->busid = MPTABLE_ISA_BUS;
	memcpy(bus->bustype, "ISA   ", 6);
	p += sizeof(*bus);
	count++;

	struct mpc_ioapic *io = (struct mpc_ioapic *)p;
	io->type = MP_IOAPIC;
	io->apicid = (uint8_t)cpus;
	io->apicver = MP_IOAPIC_VER;
	io->flags = 1;
	io->apicaddr = MP_IOAPIC_BASE;
	p += sizeof(*io);
	count++;

	for (unsigned irq = 0; irq < 16; irq++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;

		s->type = MP_INTSRC;
		s->irqtype = MP_INT;
		s->irqflag = 0;                     /* conforms to the bus: ISA edge/high */
		s->srcbus = MPTABLE_ISA_BUS;
		s->srcbusirq = (uint8_t)irq;
		s->dstapic = (uint8_t)cpus;
		s->dstirq = (uint8_t)(irq == 0 ? MPTABLE_IRQ0_PIN : irq);
		p += sizeof(*s);
	}

	for (unsigned lint = 0; lint < 2; lint++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;

		s->type = MP_LINTSRC;
		s->irqtype = lint == 0 ? MP_EXTINT : MP_NMI;
		s->srcbus = MPTABLE_ISA_BUS;
		s->srcbusirq = 0;
		s->dstapic = 0xff;                  /* every local APIC */
		s->dstirq = (uint8_t)lint;
		p += sizeof(*s);
	}

	memcpy(hdr->signature, "PCMP", 4);
	hdr->length = (uint16_t)(p - (unsigned char *)hdr);
	hdr->spec_rev = MP_SPEC_REV;
	memcpy(hdr->oem, "PROVIUM ", 8);
	memcpy(hdr->product, "MICROVM     ", 12);
	hdr->count = count;
	hdr->lapic = MP_LAPIC_BASE;
	hdr->checksum = mp_checksum(hdr, hdr->length);
	return (int)size;
}
