# kernels/kernels.mk — included by the Makefile. `make` builds build/rootfs (the
# guest root file system directory the sandbox backend uses as its root); the guest
# kernel itself is only built by `make kernel` (kernels/build.sh), never by `make`.
# Extra targets: `make initramfs` (only the cpio), `make kernel-pvm` (the PVM variant
# the slow tier boots on kvm_pvm hosts). `make kernel ARCH=arm64` (and `make initramfs
# ARCH=arm64`) build the arm64 guest kernel and initramfs with the arm64 agent,
# build-arm64/provium-agent (docs/arm64.md). See docs/kernels.md.

EXTRA_ALL += $(BUILD)/rootfs

# rootfs.sh stamps every entry with a fixed mtime (reproducible images), so the
# directory is touched afterwards for make's own up-to-date check.
$(BUILD)/rootfs: $(BUILD)/provium-agent kernels/init kernels/rootfs.sh
	@PROVIUM_AGENT=$(BUILD)/provium-agent ./kernels/rootfs.sh $@
	@touch $@

# The initramfs packs the agent, so `make kernel` builds the agent first.
kernel: $(BUILD)/provium-agent

.PHONY: initramfs kernel-pvm
initramfs: $(BUILD)/provium-agent
	@$(if $(KERNEL_ARCH_FLAGS),,PROVIUM_AGENT=$(BUILD)/provium-agent) ./kernels/build.sh --initramfs $(KERNEL_ARCH_FLAGS)

kernel-pvm: $(BUILD)/provium-agent
	@PROVIUM_AGENT=$(BUILD)/provium-agent ./kernels/build.sh --pvm

# ARCH=arm64: the arm64 kernel and initramfs, with the agent cross-built static
# (ARM64_CC) into build-arm64/ like `make ARCH=arm64` builds the rest.
KERNEL_ARCH_FLAGS := $(if $(filter arm64,$(ARCH)),--arch arm64)
ARM64_CC ?= $(if $(filter aarch64,$(shell uname -m)),gcc,aarch64-linux-gnu-gcc)
ifeq ($(ARCH),arm64)
kernel initramfs: arm64-agent
.PHONY: arm64-agent
arm64-agent:
	@$(MAKE) --no-print-directory BUILD=build-arm64 CC=$(ARM64_CC) build-arm64/provium-agent
endif
