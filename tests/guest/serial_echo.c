/* serial_echo.c — prints the prompt "line> " (no newline), reads one line the host
 * types into the UART (polling LSR.DR, then RBR) and echoes it back as "ECHO: <line>". host_serial.c waits for the
 * "INFO: ready" line, sends the input with vm_console_input() and checks the echo. */
#include "guest.h"

int main(void)
{
	char line[128];
	int n;

	report_info("ready for a line of input");
	printf("line> "); /* a prompt: `provium boot` must show it before any newline */
	n = serial_readline(line, sizeof(line), 60000);
	printf("\n");
	report(n >= 0, "received a line from the host (%d bytes)", n);
	if (n >= 0)
		printf("ECHO: %s\n", line);
	return report_summary();
}
