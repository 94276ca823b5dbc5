# kernels/kernels.mk — included by the Makefile. `make` builds build/rootfs (the
# guest root file system directory the sandbox backend uses as its root); the guest
# kernel itself is only built by `make kernel` (kernels/build.sh), never by `make`.
# Extra targets: `make initramfs` (only the cpio), `make kernel-pvm` (the PVM variant
# the slow tier boots on kvm_pvm hosts). See docs/kernels.md.

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
	@PROVIUM_AGENT=$(BUILD)/provium-agent ./kernels/build.sh --initramfs

kernel-pvm: $(BUILD)/provium-agent
	@PROVIUM_AGENT=$(BUILD)/provium-agent ./kernels/build.sh --pvm
