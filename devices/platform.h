/* platform.h — the fixed PC ports every x86 VM has (devices/platform.c): the exit
 * port 0xf4, the i8042 reset line, and quiet sinks for ports Linux pokes at boot;
 * and the exit register arm64 VMs have instead of the port. */
#ifndef PROVIUM_PLATFORM_H
#define PROVIUM_PLATFORM_H

#include <stdint.h>

struct vm;

#define PLATFORM_EXIT_PORT 0xf4

int platform_create(struct vm *vm);
/* The exit port as a 4-byte MMIO register at `gpa` (arm64, which has no ports): a
 * write ends the VM with VM_EXIT_PORT and the value. Not in the device tree: only
 * test guests and `provium doctor` use it. */
int platform_create_exit_mmio(struct vm *vm, uint64_t gpa);

#endif
