/* doctor.h — host checks shared by `provium doctor` (runner/cmd_doctor.c) and the
 * backend selection. */
#ifndef PROVIUM_DOCTOR_H
#define PROVIUM_DOCTOR_H

#include <stddef.h>

/* 1 when /dev/kvm is usable and backed by hardware virtualization (kvm_intel or
 * kvm_amd), so Linux guests can reach user space; else 0 with the reason in `why`
 * (missing/inaccessible /dev/kvm, wrong API version, PVM, no hardware module). */
int doctor_linux_guests_ok(char *why, size_t len);

#endif
