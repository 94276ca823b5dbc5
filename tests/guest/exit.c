/* exit.c — boots and exits with the code given as "exit=N" on the command line
 * (default 0): the smallest proof that the VMM's loader, entry state, serial port
 * and exit port work. Booted by host_exit.c. */
#include "guest.h"

int main(void)
{
	uint64_t code = 0;
	bool given = cmdline_u64("exit", &code);

	report(boot_params_ptr != 0, "entered with rsi = boot_params (%#lx)", boot_params_ptr);
	report(given, "exit code on the command line: \"%s\"", bp_cmdline());
	printf("exit: code %lu\n", code);
	report_summary();
	return (int)code;
}
