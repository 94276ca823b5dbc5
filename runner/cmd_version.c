/* cmd_version.c — `provium version`: the version, PROTOCOL_VERSION and which
 * backends this host can run (kvm for Linux guests; sandbox). */
#include "runner/commands.h"
#include "agent/proto.h"
#include "runner/hostcheck.h"

#include <stdio.h>
#include <string.h>

int cmd_version(int argc, char **argv)
{
	char why[512];
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: provium version\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "provium version: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	printf("provium %s\n", PROVIUM_VERSION);
	printf("protocol %d\n", PROTOCOL_VERSION);
	printf("backends:\n");
	bool kvm = pv_kvm_linux_ok(why, sizeof(why));
	printf("  kvm      %s (%s)\n", kvm ? "available" : "unavailable", why);
	bool sb = pv_sandbox_ok(why, sizeof(why));
	printf("  sandbox  %s (%s)\n", sb ? "available" : "unavailable", why);
	printf("  auto     %s\n", kvm ? "kvm" : sb ? "sandbox" : "none");
	return 0;
}
