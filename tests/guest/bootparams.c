/* bootparams.c — reports what the VMM put in the zero page: the command line, every
 * e820 entry and the RAM size, as "cmdline:", "e820:" and "ram:" lines that
 * host_bootparams.c compares with what it configured; then checks the map makes
 * sense and that the last page of RAM really is RAM. */
#include "guest.h"

int main(void)
{
	const struct e820_entry *e;
	unsigned n = bp_e820(&e);
	uint64_t end = bp_ram_end(), total = bp_ram_bytes();
	bool low_ram = false, high_ram = false, sorted = true;

	printf("cmdline: %s\n", bp_cmdline());
	printf("e820: %u entries\n", n);
	for (unsigned i = 0; i < n; i++) {
		printf("e820: %#lx %#lx %u\n", e[i].addr, e[i].size, e[i].type);
		if (e[i].type == E820_RAM && e[i].addr == 0 && e[i].size >= 0x9f000)
			low_ram = true;
		if (e[i].type == E820_RAM && e[i].addr == 0x100000)
			high_ram = true;
		if (i && e[i].addr < e[i - 1].addr + e[i - 1].size)
			sorted = false;
	}
	printf("ram: end %lu KiB, total %lu KiB\n", end >> 10, total >> 10);

	report(n >= 3, "e820 has %u entries", n);
	report(low_ram, "e820 has base RAM at 0");
	report(high_ram, "e820 has RAM from 1 MiB");
	report(sorted, "e820 entries are sorted and do not overlap");
	report(bp_cmdline()[0] != 0, "command line is not empty");

	/* The top of RAM is mapped (the loader's 4 GiB identity map) and holds data. */
	volatile uint64_t *last = (volatile uint64_t *)(end - 8);
	*last = 0x5a5aa5a5deadbeefull;
	report(end > 0x100000 && *last == 0x5a5aa5a5deadbeefull,
	       "last word of RAM at %#lx reads back", end - 8);
	return report_summary();
}
