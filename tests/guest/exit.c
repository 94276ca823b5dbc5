/* exit.c — boots and exits with the code given as "exit=N" on the command line
 * (default 0): the smallest proof that the VMM's loader, entry state, serial port
 * and exit port work. Booted by host_exit.c. With "flood" on the command line it
 * prints numbered lines forever instead (test_cmd_boot: `provium boot` must stop on
 * a signal or a closed output whatever the guest does). */
#include "guest.h"

int main(void)
{
	uint64_t code = 0;
	bool given = cmdline_u64("exit", &code);

	report(boot_params_ptr != 0, "entered with rsi = boot_params (%#lx)", boot_params_ptr);
	report(given, "exit code on the command line: \"%s\"", bp_cmdline());
	if (cmdline_has("flood"))
		for (uint64_t i = 0;; i++)
			printf("flood line %lu\n", i);
	printf("exit: code %lu\n", code);
	report_summary();
	return (int)code;
}
