/* cmd_kernel.c — `provium kernel build|path|hash`: build the guest kernel +
 * initramfs with kernels/build.sh, print where the built ones are, or print the
 * kernel's cache key (docs/kernels.md). */
#include "runner/commands.h"
#include "runner/kernel.h"
#include "vmm/arch.h"

#include "vmm/util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: provium kernel build [--pvm]\n"
		"       provium kernel path [--pvm] [--vmlinux|--bzimage|--initrd|--config]\n"
		"       provium kernel path --pvm-cmdline\n"
		"       provium kernel hash [--pvm]\n"
		"\n"
		"build   build the guest kernel and initramfs into the cache (kernels/build.sh;\n"
		"        about 4 minutes the first time, a no-op when cached)\n"
		"path    print the cached vmlinux, bzImage, initramfs and .config paths, or\n"
		"        one of them; exit 3 naming the command to run when not built\n"
		"hash    print the kernel's cache key (the <hash> of its cache directory:\n"
		"        what a CI cache is keyed by); builds nothing\n"
		"--pvm   the PVM variant (hosts whose /dev/kvm is kvm_pvm; slow tier only)\n"
		"--pvm-cmdline  print the kernel command-line workarounds for kvm_pvm hosts\n");
}

static int cmd_path(bool pvm, const char *only)
{
	char vmlinux[PATH_MAX], bzimage[PATH_MAX], initrd[PATH_MAX], config[PATH_MAX];
	int rc;

	/* In a checkout this also notices an initramfs older than the agent. */
	if (!pvm && (rc = kernel_ensure(false)) < 0)
		goto fail;
	if ((rc = kernel_cached_paths(pvm, vmlinux, bzimage, initrd, sizeof(vmlinux))) < 0)
		goto fail;
	if (!pvm && (rc = kernel_paths(vmlinux, initrd, sizeof(vmlinux))) < 0)
		goto fail;
	snprintf(config, sizeof(config), "%s", bzimage);
	char *slash = strrchr(config, '/');
	if (slash)
		snprintf(slash + 1, sizeof(config) - (size_t)(slash + 1 - config), "config");

	if (!only) {
		/* arm64: one Image is both (arch_layout.kernel_file) */
		printf("%-9s %s\n", arch_layout.kernel_file, vmlinux);
		if (strcmp(vmlinux, bzimage))
			printf("bzImage   %s\n", bzimage);
		printf("initramfs %s\n", initrd);
		printf("config    %s\n", config);
	} else if (!strcmp(only, "vmlinux")) {
		printf("%s\n", vmlinux);
	} else if (!strcmp(only, "bzimage")) {
		printf("%s\n", bzimage);
	} else if (!strcmp(only, "initrd")) {
		printf("%s\n", initrd);
	} else {
		printf("%s\n", config);
	}
	return 0;
fail:
	fprintf(stderr, "provium kernel path: %s\n", pv_errmsg());
	return 3;
}

int cmd_kernel(int argc, char **argv)
{
	bool pvm = false, pvm_cmdline = false;
	const char *only = NULL;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		usage(stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--pvm"))
			pvm = true;
		else if (!strcmp(a, "--pvm-cmdline") && !strcmp(sub, "path"))
			pvm_cmdline = true;
		else if (!strcmp(sub, "path") && (!strcmp(a, "--vmlinux") || !strcmp(a, "--bzimage") ||
						 !strcmp(a, "--initrd") || !strcmp(a, "--config")))
			only = a + 2;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "provium kernel %s: unknown option '%s'\n", sub, a);
			usage(stderr);
			return 2;
		}
	}

	if (!strcmp(sub, "build")) {
		if (kernel_build(pvm) < 0) {
			fprintf(stderr, "provium kernel build: %s\n", pv_errmsg());
			return 3;
		}
		return 0;
	}
	if (!strcmp(sub, "hash")) {
		/* build.sh --hash prints it: run it in this process's place. */
		char script[PATH_MAX];
		if (kernel_build_script(script, sizeof(script)) < 0) {
			fprintf(stderr, "provium kernel hash: %s\n", pv_errmsg());
			return 3;
		}
		char *args[] = {script, "--hash", pvm ? "--pvm" : NULL, NULL};
		execv(script, args);
		fprintf(stderr, "provium kernel hash: cannot run %s: %s\n", script, strerror(errno));
		return 3;
	}
	if (!strcmp(sub, "path")) {
		if (pvm_cmdline) {
			printf("%s\n", KERNEL_PVM_CMDLINE);
			return 0;
		}
		return cmd_path(pvm, only);
	}
	fprintf(stderr, "provium kernel: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return 2;
}
