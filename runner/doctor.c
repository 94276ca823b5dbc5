/* doctor.c — host checks shared by `provium doctor` and the backend selection
 * (runner/doctor.h). Kept apart from cmd_doctor.c so library users link only this. */
#include "runner/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int exists(const char *p)
{
	return access(p, F_OK) == 0;
}

int doctor_linux_guests_ok(char *why, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "/dev/kvm: %s", strerror(errno));
		return 0;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (v != KVM_API_VERSION) {
		snprintf(why, len, "/dev/kvm has API version %d, not %d", v, KVM_API_VERSION);
		return 0;
	}
	if (exists("/sys/module/kvm_pvm")) {
		snprintf(why, len, "/dev/kvm is PVM (kvm_pvm, a software virtualizer): Linux "
			 "guests cannot reach user space on it");
		return 0;
	}
#if defined(__aarch64__)
	/* arm64 KVM is part of the kernel (no vendor module): /dev/kvm answering API 12
	 * without kvm_pvm is hardware virtualization (EL2, VHE or nVHE). */
	snprintf(why, len, "/dev/kvm with hardware virtualization (arm64 KVM)");
	return 1;
#endif
	if (!exists("/sys/module/kvm_intel") && !exists("/sys/module/kvm_amd")) {
		snprintf(why, len, "/dev/kvm is not backed by kvm_intel or kvm_amd");
		return 0;
	}
	snprintf(why, len, "/dev/kvm with hardware virtualization (%s)",
		 exists("/sys/module/kvm_intel") ? "kvm_intel" : "kvm_amd");
	return 1;
}
