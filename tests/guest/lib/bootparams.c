/* bootparams.c — reads the Linux zero page the VMM passed in rsi: the command line
 * (hdr.cmd_line_ptr at 0x228) and the e820 map (count at 0x1e8, table at 0x2d0). */
#include "guest.h"

#define BP_E820_ENTRIES 0x1e8
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0

const char *bp_cmdline(void)
{
	uint32_t p;

	if (!boot_params_ptr)
		return "";
	p = *(const uint32_t *)(boot_params_ptr + BP_CMD_LINE_PTR);
	return p ? (const char *)(uint64_t)p : "";
}

unsigned bp_e820(const struct e820_entry **table)
{
	if (!boot_params_ptr) {
		*table = NULL;
		return 0;
	}
	*table = (const struct e820_entry *)(boot_params_ptr + BP_E820_TABLE);
	return *(const uint8_t *)(boot_params_ptr + BP_E820_ENTRIES);
}

uint64_t bp_ram_bytes(void)
{
	const struct e820_entry *e;
	unsigned n = bp_e820(&e);
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		if (e[i].type == E820_RAM)
			sum += e[i].size;
	return sum;
}

uint64_t bp_ram_end(void)
{
	const struct e820_entry *e;
	unsigned n = bp_e820(&e);
	uint64_t end = 0;

	for (unsigned i = 0; i < n; i++)
		if (e[i].type == E820_RAM && e[i].addr + e[i].size > end)
			end = e[i].addr + e[i].size;
	return end;
}

/* Finds `key` as a whole word at a word start; returns what follows it. */
static const char *find_word(const char *key)
{
	const char *c = bp_cmdline();
	size_t n = strlen(key);

	for (const char *p = c; (p = strstr(p, key)); p++)
		if ((p == c || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ' || p[n] == '='))
			return p + n;
	return NULL;
}

bool cmdline_u64(const char *key, uint64_t *val)
{
	const char *p = find_word(key);

	if (!p || *p != '=')
		return false;
	*val = strtou64(p + 1, NULL);
	return true;
}

bool cmdline_has(const char *word)
{
	const char *p = find_word(word);

	return p && *p != '=';
}
