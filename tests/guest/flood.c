/* flood.c — prints numbered lines on the serial console forever. test_cmd_boot boots
 * it with `provium boot`, which must stop on SIGTERM/SIGINT/SIGHUP and when its output
 * is closed, whatever the guest is doing. */
#include "guest.h"

int main(void)
{
	for (uint64_t i = 0;; i++)
		printf("flood line %lu\n", i);
	return 0;
}
