/* hostcheck.h — quick answers about which backends this host can run, for
 * `provium version` and for resolving `--backend auto` in `provium run`. */
#ifndef PROVIUM_HOSTCHECK_H
#define PROVIUM_HOSTCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* /dev/kvm can run Linux guests (runner/doctor.h: hardware KVM, not PVM). */
bool pv_kvm_linux_ok(char *why, size_t cap);
/* The sandbox backend's needs: user/mount/pid/net namespaces. */
bool pv_sandbox_ok(char *why, size_t cap);
/* "kvm" or "sandbox" for `requested` (auto|kvm|sandbox); NULL with why set when the
 * requested backend cannot run here. */
const char *pv_resolve_backend(const char *requested, char *why, size_t cap);

#endif
