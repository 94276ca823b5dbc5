/* kernel.h — where the guest kernel and initramfs are, and how to get them built.
 *
 * kernels/build.sh builds them into the cache (docs/kernels.md):
 *   $CACHE/kernel/<hash>/{vmlinux,bzImage,config,build.log}, with
 *   $CACHE/kernel/current (and current-pvm) pointing at the latest build, and
 *   $CACHE/initramfs/<hash>.cpio with $CACHE/initramfs/current.cpio.
 * CACHE is $PROVIUM_CACHE_DIR, else $XDG_CACHE_HOME/provium, else ~/.cache/provium.
 * $PROVIUM_KERNEL and $PROVIUM_INITRD, when set, replace the cached ones.
 * All functions follow vmm/util.h: 0 or -errno with a message in pv_errmsg(). */
#ifndef PROVIUM_KERNEL_H
#define PROVIUM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

/* The command a person runs to build the kernel + initramfs. */
#define KERNEL_BUILD_CMD "provium kernel build"

/* The kernel command-line workarounds a kvm_pvm host needs (ENVIRONMENT.md); the
 * same string as kernels/pvm-cmdline. */
#define KERNEL_PVM_CMDLINE \
	"noxsave clearcpuid=308,534,288,295,298,145,158,306,151,150,147,148,291,296,297,580,141,153,154"

/* The cache directory (not created). -ENAMETOOLONG or -ENOENT (no HOME) on failure. */
int kernel_cache_dir(char *out, size_t len);

/* The default kernel (ELF vmlinux, which boots fastest) and initramfs. Honors
 * $PROVIUM_KERNEL / $PROVIUM_INITRD; otherwise the cache's current build. Returns
 * -ENOENT with a message naming the command to run when they are not built. */
int kernel_paths(char *vmlinux, char *initrd, size_t len);

/* Like kernel_paths for either variant (pvm: the slow tier's PVM kernel), with the
 * bzImage too. Any out pointer may be NULL. Ignores $PROVIUM_KERNEL/$PROVIUM_INITRD. */
int kernel_cached_paths(bool pvm, char *vmlinux, char *bzimage, char *initrd, size_t len);

/* kernels/build.sh: the install's (PREFIX/share/provium/kernels) or the checkout's
 * this binary was built in, or $PROVIUM_SOURCE_DIR's (runner/layout.h); -ENOENT when
 * there is none. Also sets $PROVIUM_AGENT (when unset) to this binary's agent, which
 * build.sh packs into the initramfs. */
int kernel_build_script(char *out, size_t len);

/* Runs kernels/build.sh [--pvm] with its progress on stderr; 0 when it built (or
 * found cached) everything. */
int kernel_build(bool pvm);

/* Makes sure the default kernel + initramfs exist and are current (in a checkout,
 * `build.sh --paths` also notices an initramfs older than the agent). When they are
 * not: with build_if_missing, builds them with visible progress; otherwise returns
 * -ENOENT whose message is the exact command to run. */
int kernel_ensure(bool build_if_missing);

#endif
