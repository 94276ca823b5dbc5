/* platform.h — the fixed PC ports every VM has (devices/platform.c): the exit port
 * 0xf4, the i8042 reset line, and quiet sinks for ports Linux pokes at boot. */
#ifndef PROVIUM_PLATFORM_H
#define PROVIUM_PLATFORM_H

struct vm;

#define PLATFORM_EXIT_PORT 0xf4

int platform_create(struct vm *vm);

#endif
