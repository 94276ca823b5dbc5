/* host_bootparams.c — boots the bootparams guest with 64 and 128 MiB and a known
 * command line, then parses what it reports and compares it with the config: the
 * command line, the exact e820 map (base RAM, the reserved EBDA..1 MiB hole, RAM
 * from 1 MiB to the end) and the RAM size. */
#include "tests/guest/host.h"

static struct guest g;

#define CMDLINE "console=ttyS0 bootparams-test token=abc123"

static void check_memory(unsigned mib)
{
	const char *p;
	unsigned long long addr, size;
	unsigned type, n = 0, count = 0;
	unsigned long long end_kib, total_kib;
	const struct { unsigned long long addr, size; unsigned type; } want[] = {
		{0, 0x9fc00, 1},
		{0x9fc00, 0x100000 - 0x9fc00, 2},
		{0x100000, ((unsigned long long)mib << 20) - 0x100000, 1},
	};

	guest_boot(&g, "bootparams", CMDLINE, mib, 1);
	guest_wait_exit(&g, GUEST_TIMEOUT_MS);
	guest_expect_exit(&g, 0);

	/* The command line as given (the VMM may append device entries). */
	guest_expect(&g, "cmdline: " CMDLINE);

	p = strstr(g.log, "e820: ");
	if (!p || sscanf(p, "e820: %u entries", &count) != 1)
		guest_fail(&g, "no \"e820: N entries\" line");
	if (count != 3)
		guest_fail(&g, "guest saw %u e820 entries, want 3", count);
	for (p = strchr(p, '\n'); p && (p = strstr(p, "e820: 0x")); p++, n++) {
		if (sscanf(p, "e820: %llx %llx %u", &addr, &size, &type) != 3)
			guest_fail(&g, "unparsable e820 line");
		if (n >= 3 || addr != want[n].addr || size != want[n].size || type != want[n].type)
			guest_fail(&g, "e820 entry %u is %#llx+%#llx type %u, want %#llx+%#llx type %u", n,
				   addr, size, type, n < 3 ? want[n].addr : 0, n < 3 ? want[n].size : 0,
				   n < 3 ? want[n].type : 0);
	}
	if (n != 3)
		guest_fail(&g, "guest printed %u e820 entries, want 3", n);

	p = strstr(g.log, "ram: ");
	if (!p || sscanf(p, "ram: end %llu KiB, total %llu KiB", &end_kib, &total_kib) != 2)
		guest_fail(&g, "no \"ram:\" line");
	if (end_kib != mib * 1024ull)
		guest_fail(&g, "guest RAM ends at %llu KiB, configured %u MiB", end_kib, mib);
	if (total_kib * 1024 != 0x9fc00 + ((unsigned long long)mib << 20) - 0x100000)
		guest_fail(&g, "guest RAM totals %llu KiB", total_kib);
	guest_expect(&g, "PASS: last word of RAM");
}

static void test_64mib(void **state) { (void)state; check_memory(64); }
static void test_128mib(void **state) { (void)state; check_memory(128); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_64mib, guest_teardown),
		cmocka_unit_test_teardown(test_128mib, guest_teardown),
	};

	return cmocka_run_group_tests_name("guest_bootparams", tests, NULL, NULL);
}
