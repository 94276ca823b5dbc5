/* layout.h — where the files provium ships are found at run time, in a checkout
 * and in an install (docs/install.md).
 *
 *   checkout (build/provium)       install (PREFIX/bin/provium; make install, the .deb)
 *   build/provium-agent            PREFIX/lib/provium/provium-agent
 *   build/rootfs/                  PREFIX/lib/provium/rootfs/
 *   kernels/build.sh ...           PREFIX/share/provium/kernels/build.sh ...
 *
 * Every lookup tries the places next to the running binary first, so a tree
 * installed with DESTDIR or unpacked with `dpkg -x` works wherever it lies, then the
 * PREFIX the binary was built for (PROVIUM_PREFIX, default /usr/local). Environment
 * overrides: $PROVIUM_AGENT, $PROVIUM_ROOTFS, $PROVIUM_SOURCE_DIR (a checkout whose
 * kernels/ to use), $PROVIUM_BUILD (a build dir holding rootfs/). */
#ifndef PROVIUM_LAYOUT_H
#define PROVIUM_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

/* The running binary's directory ("" when /proc/self/exe cannot be read). */
const char *layout_exe_dir(void);

/* The static guest agent. -ENOENT with a message naming every place tried. */
int layout_agent(char *out, size_t len);

/* The sandbox's root file system directory, or NULL when there is none. */
const char *layout_rootfs(void);

/* The directory holding kernels/build.sh (a checkout's kernels/ or
 * PREFIX/share/provium/kernels); *installed tells which. -ENOENT when neither. */
int layout_kernels_dir(char *out, size_t len, bool *installed);

#endif
