/* mptable.c — finds the MP floating pointer where Linux looks (the last KiB of base
 * memory, then the BIOS area) and reads the processors, the IOAPIC and the ISA
 * interrupt routing from the configuration table, checking both checksums. */
#include "guest.h"

static bool sum_ok(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s == 0;
}

static const uint8_t *scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a < start + len; a += 16)
		if (!memcmp((const void *)a, "_MP_", 4) && sum_ok((const uint8_t *)a, 16))
			return (const uint8_t *)a;
	return NULL;
}

bool mp_parse(struct mp_info *mi, const char **why)
{
	const uint8_t *mpf, *t, *p, *end;
	uint16_t count;

	memset(mi, 0, sizeof(*mi));
	for (unsigned i = 0; i < 16; i++)
		mi->isa_irq_pin[i] = -1;
	mpf = scan(0x9fc00, 0x400);
	if (!mpf)
		mpf = scan(0xf0000, 0x10000);
	if (!mpf)
		return *why = "no MP floating pointer with a good checksum", false;
	t = (const uint8_t *)(uint64_t)*(const uint32_t *)(mpf + 4);
	if (!t || memcmp(t, "PCMP", 4))
		return *why = "MP configuration table has no PCMP signature", false;
	if (!sum_ok(t, *(const uint16_t *)(t + 4)))
		return *why = "MP configuration table checksum is wrong", false;
	count = *(const uint16_t *)(t + 34);
	p = t + 44;
	end = t + *(const uint16_t *)(t + 4);
	for (unsigned i = 0; i < count && p < end; i++) {
		switch (p[0]) {
		case 0:
			if (mi->ncpus < ARRAY_SIZE(mi->apic_ids))
				mi->apic_ids[mi->ncpus] = p[1];
			mi->ncpus++;
			if (p[3] & 2)
				mi->bsp_id = p[1];
			p += 20;
			break;
		case 2:
			mi->ioapic_id = p[1];
			mi->ioapic_addr = *(const uint32_t *)(p + 4);
			p += 8;
			break;
		case 3:
			if (p[5] < 16)
				mi->isa_irq_pin[p[5]] = p[7];
			p += 8;
			break;
		case 1:
		case 4:
			p += 8;
			break;
		default:
			return *why = "MP configuration table has an unknown entry type", false;
		}
	}
	if (!mi->ncpus)
		return *why = "MP configuration table lists no processors", false;
	return true;
}
