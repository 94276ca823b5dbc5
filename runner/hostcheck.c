/* hostcheck.c — backend availability (see hostcheck.h). ENVIRONMENT.md: a PVM host
 * (kvm_pvm) has /dev/kvm but cannot run Linux guests to user space, so a usable
 * /dev/kvm alone is not enough: doctor_linux_guests_ok() knows the difference. */
#include "runner/hostcheck.h"
#include "runner/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool pv_kvm_linux_ok(char *why, size_t cap)
{
	/* provium doctor's probe (runner/doctor.c) is the one source of truth */
	if (doctor_linux_guests_ok(why, cap))
		return true;
	return false;
}

bool pv_sandbox_ok(char *why, size_t cap)
{
	static const char *const ns[] = {"user", "mnt", "pid", "net", "uts", "ipc"};
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/ns/%s", ns[i]);
		if (access(p, F_OK)) {
			snprintf(why, cap, "no %s namespaces in this kernel", ns[i]);
			return false;
		}
	}
	if (geteuid() != 0) {
		FILE *f = fopen("/proc/sys/kernel/unprivileged_userns_clone", "r");
		int v = 1;
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = 1;
			fclose(f);
		}
		if (!v) {
			snprintf(why, cap, "unprivileged user namespaces are disabled "
				 "(sysctl kernel.unprivileged_userns_clone=1)");
			return false;
		}
	}
	snprintf(why, cap, "namespaces available");
	return true;
}

const char *pv_resolve_backend(const char *requested, char *why, size_t cap)
{
	char w[256], kvm_why[256] = "";
	if (!strcmp(requested, "kvm")) {
		if (pv_kvm_linux_ok(w, sizeof(w)))
			return "kvm";
		snprintf(why, cap, "backend kvm: %s (see `provium doctor`; --backend sandbox runs "
			 "without KVM)", w);
		return NULL;
	}
	if (!strcmp(requested, "auto") && pv_kvm_linux_ok(kvm_why, sizeof(kvm_why)))
		return "kvm";
	if (!pv_sandbox_ok(w, sizeof(w))) {
		snprintf(why, cap, "backend sandbox: %s", w);
		return NULL;
	}
	if (!strcmp(requested, "auto"))
		snprintf(why, cap, "backend auto: using sandbox (kvm: %s)", kvm_why);
	else
		why[0] = 0;
	return "sandbox";
}
