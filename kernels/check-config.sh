#!/usr/bin/env bash
# check-config.sh — verifies that a resolved kernel .config holds every option the
# config fragments ask for. `make olddefconfig` silently drops options whose
# dependencies are missing; this turns that into a failure naming each one.
# Used by kernels/build.sh after olddefconfig and by the tests on the built kernel.
#
# Usage: kernels/check-config.sh DOTCONFIG FRAGMENT...
#   Later fragments override earlier ones (kernels/config, then kernels/config-pvm).
#   "CONFIG_X=v" must appear exactly; "# CONFIG_X is not set" means X must not be
#   y or m. Exit 0 when all hold, 1 listing the missing/wrong ones, 2 on usage error.
set -u
if [ $# -lt 2 ] || [ ! -r "$1" ]; then
  echo "usage: $0 DOTCONFIG FRAGMENT..." >&2
  [ $# -ge 1 ] && [ ! -r "$1" ] && echo "check-config: cannot read $1" >&2
  exit 2
fi
dotconfig=$1; shift
for f in "$@"; do
  [ -r "$f" ] || { echo "check-config: cannot read fragment $f" >&2; exit 2; }
done
awk '
  # Fragments: remember the wanted value of each option, later files win.
  FNR == 1 { fileno++ }
  fileno <= nfrag {
    if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) {
      name = substr($0, 1, RLENGTH - 1); want[name] = substr($0, RLENGTH + 1)
      if (!(name in order)) { order[name] = ++n; names[n] = name }
    } else if (match($0, /^# CONFIG_[A-Za-z0-9_]+ is not set/)) {
      split($0, parts, " "); name = parts[2]; want[name] = "n"
      if (!(name in order)) { order[name] = ++n; names[n] = name }
    }
    next
  }
  # The resolved .config.
  /^CONFIG_[A-Za-z0-9_]+=/ { i = index($0, "="); have[substr($0, 1, i - 1)] = substr($0, i + 1) }
  END {
    bad = 0
    for (k = 1; k <= n; k++) {
      name = names[k]; w = want[name]; h = (name in have) ? have[name] : "n"
      if (w == "n") { if (h == "y" || h == "m") { printf "  %s is %s, must be off\n", name, h; bad++ } }
      else if (h != w) { printf "  %s=%s wanted, .config has %s\n", name, w, (h == "n" ? "it unset" : name "=" h); bad++ }
    }
    if (bad) { printf "check-config: %d of %d required options missing or wrong\n", bad, n; exit 1 }
    printf "check-config: all %d required options present\n", n
  }
' nfrag=$# "$@" "$dotconfig"
