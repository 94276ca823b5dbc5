# Provium — one C11 program with its VMM inside, plus the guest agent.
# `make` builds build/provium and build/provium-agent; `make test` runs every tier
# this host can run and ends with one line "N passed, N failed, N skipped".

# ARCH: the guest architecture, which is the host's too (KVM runs guests of its own
# kind): x86_64 or arm64, default the host's. On an x86 host `make ARCH=arm64` is a
# cross build into build-arm64/ (`make deps ARCH=arm64` first; docs/arm64.md).
HOST_ARCH := $(patsubst aarch64,arm64,$(shell uname -m))
override ARCH := $(patsubst aarch64,arm64,$(patsubst amd64,x86_64,$(patsubst \
                   x86,x86_64,$(or $(ARCH),$(HOST_ARCH)))))
ifeq ($(filter x86_64 arm64,$(ARCH)),)
$(error ARCH=$(ARCH): provium builds for x86_64 or arm64)
endif
CROSS   := $(if $(filter $(HOST_ARCH),$(ARCH)),,$(ARCH))
PKG_CONFIG := pkg-config
EMBED_LD   := ld
ifeq ($(CROSS),arm64)
EMBED_LD   := aarch64-linux-gnu-ld
ifeq ($(origin CC),default)
CC      := aarch64-linux-gnu-gcc
endif
BUILD   ?= build-arm64
PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config
# libfdt-dev:arm64 cannot be installed beside the host's: tests/deps-arm64.sh
# unpacks it here.
SYSROOT := build-arm64/sysroot
ARCH_CFLAGS := -I$(SYSROOT)/usr/include
ARCH_LDFLAGS := -L$(SYSROOT)/usr/lib/aarch64-linux-gnu
endif
CC      ?= gcc
BUILD   ?= build
PKGS    := lua5.4 msgpack jansson libnl-3.0 libnl-route-3.0 libpcap libnftables
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. -MMD -MP $(ARCH_CFLAGS) \
           $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(ARCH_LDFLAGS)
LDLIBS  := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -ledit -lpthread -lm
# arm64 describes its guests with a device tree (vmm/arm64/fdt.c).
ifeq ($(ARCH),arm64)
LDLIBS  += -lfdt
endif

# Sources: every .c in these directories is part of the program. runner/main.c holds
# main(); everything else goes into build/libprovium.a so tests can link it.
# agent/proto*.c is the wire codec shared by the host and the agent.
# vmm/x86/ or vmm/arm64/ holds the architecture's side of vmm/arch.h.
ARCH_DIR   := vmm/$(patsubst x86_64,x86,$(ARCH))
LIB_SRCS   := $(wildcard vmm/*.c $(ARCH_DIR)/*.c devices/*.c lua/*.c) \
              $(filter-out runner/main.c,$(wildcard runner/*.c)) \
              $(wildcard agent/proto*.c)
AGENT_SRCS := $(wildcard agent/*.c)
LUA_EMBED  := $(wildcard lua/*.lua)

LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LUA_EMBED:%.lua=$(BUILD)/obj/%.lua.o) \
              $(BUILD)/obj/lua_embed_list.o
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/agent-obj/%.o)

# The x86 boot loader, MP table and raw x86 test guests exist only on x86.
UNIT_X86   := tests/unit/test_boot.c tests/unit/test_mptable.c tests/unit/test_vm.c
UNIT_SRCS  := $(filter-out $(if $(filter arm64,$(ARCH)),$(UNIT_X86)),\
                $(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

.DEFAULT_GOAL := all
# Sub-makefiles may add targets to EXTRA_ALL (built by `make`).
include tests/guest/guest.mk
-include kernels/kernels.mk
# make install / uninstall / deb / man (docs/install.md)
include dist/dist.mk

.PHONY: all deps test check-asan asan-build bench kernel test-slow test-linux test-kvmhost clean guest unit \
	fuzz fuzz-build
# The freestanding test guests are x86 code; a cross build makes the two programs only.
all: $(BUILD)/provium $(BUILD)/provium-agent $(if $(filter x86_64,$(ARCH)),guest) \
     $(if $(CROSS),,$(EXTRA_ALL))

# ARCH=arm64: the cross compiler and :arm64 libraries as well (docs/arm64.md).
deps:
	@./tests/deps.sh
	@$(if $(filter arm64,$(ARCH)),./tests/deps-arm64.sh)

$(BUILD)/libprovium.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/provium: $(BUILD)/obj/runner/main.o $(BUILD)/libprovium.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The agent is static so it runs in the initramfs with nothing else present.
$(BUILD)/provium-agent: $(AGENT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -static -o $@ $^ -l:libmsgpackc.a -lpthread

# CPPFLAGS: the distribution's (dpkg-buildflags: _FORTIFY_SOURCE) when packaging.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/agent-obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Lua sources under lua/ are embedded into the binary as symbols
# _binary_lua_<name>_lua_start/_end.
$(BUILD)/obj/%.lua.o: %.lua
	@mkdir -p $(@D)
	$(EMBED_LD) -r -b binary -z noexecstack -o $@ $<

# The worker must load every embedded chunk and call every lua/*.c opener
# (`int pv_luaopen_<name>(lua_State *L)` at the start of a line); a static archive only
# links members something references, so this generated table references them all
# (lua/embed.h). Rewritten only when the list changes.
$(BUILD)/obj/lua_embed_list.c: FORCE
	@mkdir -p $(@D)
	@./lua/embed-list.sh $(LUA_EMBED) -- $(wildcard lua/*.c) > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/obj/lua_embed_list.o: $(BUILD)/obj/lua_embed_list.c
	$(CC) $(CFLAGS) -c -o $@ $<
.PHONY: FORCE
FORCE:

# ---- unit tests (cmocka) ----
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libprovium.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libprovium.a $(LDLIBS) -lcmocka

# The arm64 device tree builder (vmm/arm64/fdt.c) is pure, so its test runs on every
# host: linked with that object and libfdt, whatever ARCH the program is built for.
$(BUILD)/tests/unit/test_arm64_fdt: tests/unit/test_arm64_fdt.c $(BUILD)/obj/vmm/arm64/fdt.o \
		$(BUILD)/libprovium.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/vmm/arm64/fdt.o $(BUILD)/libprovium.a \
		$(LDLIBS) -lfdt -lcmocka

# The arm64 Image loader (vmm/arm64/image.c) is pure as well.
$(BUILD)/tests/unit/test_arm64_image: tests/unit/test_arm64_image.c \
		$(BUILD)/obj/vmm/arm64/image.o $(BUILD)/obj/vmm/arm64/fdt.o $(BUILD)/libprovium.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/vmm/arm64/image.o \
		$(BUILD)/obj/vmm/arm64/fdt.o $(BUILD)/libprovium.a $(LDLIBS) -lfdt -lcmocka

# The arm64 snapshot's register records (vmm/arm64/regs.c) are pure too.
$(BUILD)/tests/unit/test_arm64_regs: tests/unit/test_arm64_regs.c \
		$(BUILD)/obj/vmm/arm64/regs.o $(BUILD)/libprovium.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/vmm/arm64/regs.o $(BUILD)/libprovium.a \
		$(LDLIBS) -lcmocka

unit: $(UNIT_BINS)


# ---- test tiers ----
test: all unit asan-build fuzz-build
	@./tests/run-tiers.sh $(BUILD) unit asan fuzz guest kernel lua linux kvmhost kvmhost-arm64 \
	  $(if $(SLOW),slow)

test-slow: all unit
	@./tests/run-tiers.sh $(BUILD) slow

test-linux: all
	@./tests/run-tiers.sh $(BUILD) linux

# The linux tier inside a simulated KVM host (QEMU's emulator with SVM; tests/kvmhost/),
# for hosts whose /dev/kvm cannot run Linux guests. docs/linux-tests.md. ARCH=arm64: the
# whole linux tier with arm64 guests in the arm64 simulated host (make test runs a subset;
# docs/arm64.md).
test-kvmhost: all
	@$(if $(filter arm64,$(ARCH)),PROVIUM_KVMHOST_ARM64=all PROVIUM_ARM64_BUILD=$(CURDIR)/$(BUILD) \
	  ./tests/run-tiers.sh $(BUILD) kvmhost-arm64,./tests/run-tiers.sh $(BUILD) kvmhost)

# Unit tests again, built with ASan+UBSan into their own tree.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan-build:
	@CFLAGS="-O1 -g $(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)" \
	  $(MAKE) --no-print-directory BUILD=build-asan unit

check-asan: asan-build
	@./tests/run-tiers.sh $(BUILD) asan

# ---- fuzzers (docs/security.md) ----
# One libFuzzer binary per tests/fuzz/fuzz_<name>.h, built with clang, ASan and UBSan
# against the library in its own tree. `make test` runs each for FUZZ_SECONDS (2) on
# its corpus (tests/fuzz/<name>_corpus); `make fuzz` for FUZZ_SECONDS=60 (or more).
FUZZ_CC      ?= clang
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.h,%,$(filter-out tests/fuzz/fuzz_guest.h,\
                  $(wildcard tests/fuzz/fuzz_*.h)))
FUZZ_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Wno-gnu-variable-sized-type-not-at-end
FUZZ_BINS    := $(FUZZ_TARGETS:%=build-fuzz/fuzz/fuzz_%)

fuzz-build:
	@if command -v $(FUZZ_CC) >/dev/null; then \
	  CC=$(FUZZ_CC) CFLAGS="-O1 -g $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" \
	  LDFLAGS="$(FUZZ_FLAGS)" $(MAKE) --no-print-directory BUILD=build-fuzz fuzz-bins; \
	else echo "fuzz-build: no $(FUZZ_CC): the fuzz tier will skip"; fi

fuzz-bins: $(FUZZ_BINS)

build-fuzz/fuzz/fuzz_%: tests/fuzz/fuzz_%.h tests/fuzz/fuzz_main.c $(BUILD)/libprovium.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -DFUZZ_HEADER='"$<"' -DFUZZ_FN=pv_fuzz_$* \
	  -o $@ tests/fuzz/fuzz_main.c $(BUILD)/libprovium.a $(LDLIBS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} ./tests/run-tiers.sh $(BUILD) fuzz

bench: all
	@./tests/bench/run.sh $(BUILD)

kernel:
	@./kernels/build.sh $(KERNEL_ARCH_FLAGS)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) build-asan build-fuzz -name '*.d' 2>/dev/null)
