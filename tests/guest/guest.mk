# guest.mk — builds the freestanding test guest and the host-side tests that boot it
# (included by the top Makefile; docs/test-guest.md).
#   tests/guest/<name>.c + tests/guest/lib/*  -> $(BUILD)/guest/<name>.elf
#   tests/guest/host_<name>.c (cmocka)        -> $(BUILD)/tests/guest/host_<name>
# Wildcards: a new guest or host test needs no edit here.

GUEST_CC     := gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -MMD -MP \
                -ffreestanding -nostdlib -fno-pic -fno-pie -mno-red-zone -mno-sse \
                -mgeneral-regs-only -mcmodel=small -fno-stack-protector \
                -fcf-protection=none -fno-asynchronous-unwind-tables \
                -Itests/guest/lib
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,tests/guest/lib/guest.ld \
                 -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

GUEST_LIB_SRCS := $(wildcard tests/guest/lib/*.c tests/guest/lib/*.S)
GUEST_LIB_OBJS := $(patsubst tests/guest/lib/%,$(BUILD)/guest/lib/%.o,$(GUEST_LIB_SRCS))
GUEST_SRCS     := $(filter-out tests/guest/host_%.c,$(wildcard tests/guest/*.c))
GUEST_OBJS     := $(GUEST_SRCS:tests/guest/%.c=$(BUILD)/guest/obj/%.o)
GUEST_ELFS     := $(GUEST_SRCS:tests/guest/%.c=$(BUILD)/guest/%.elf)
GUEST_HOST_SRCS := $(wildcard tests/guest/host_*.c)
GUEST_HOST_BINS := $(GUEST_HOST_SRCS:tests/guest/%.c=$(BUILD)/tests/guest/%)

.PHONY: guest guest-elfs
# Objects made by pattern rules would count as intermediate and be deleted.
.SECONDARY: $(GUEST_LIB_OBJS) $(GUEST_OBJS)
guest: guest-elfs $(GUEST_HOST_BINS)
guest-elfs: $(GUEST_ELFS)

$(BUILD)/guest/lib/%.c.o: tests/guest/lib/%.c
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/guest/lib/%.S.o: tests/guest/lib/%.S
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/guest/obj/%.o: tests/guest/%.c
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/guest/%.elf: $(BUILD)/guest/obj/%.o $(GUEST_LIB_OBJS) tests/guest/lib/guest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $< $(GUEST_LIB_OBJS)

# The loader's unit test loads the exit guest as its "good ELF" image.
$(BUILD)/tests/unit/test_boot: $(BUILD)/guest/exit.elf

# Host-side tests boot the guests under the real VMM, so they need every guest built.
$(BUILD)/tests/guest/host_%: tests/guest/host_%.c $(BUILD)/libprovium.a $(GUEST_ELFS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DPROVIUM_SRCDIR='"$(CURDIR)"' $(LDFLAGS) -o $@ $< $(BUILD)/libprovium.a $(LDLIBS) -lcmocka
