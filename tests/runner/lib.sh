# lib.sh — shared by the runner's end-to-end tests (tests/runner/*.sh): TAP output,
# a scratch directory, and `expect_code` to check RUNNER.md exit codes.
# Each script prints its own TAP; tests/lua/run.sh renumbers them into one stream.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROVIUM=${PROVIUM_BUILD:-$root/build}/provium
W=$(mktemp -d /tmp/provium-rt.XXXXXX)
trap 'rm -rf "$W"' EXIT
export PROVIUM_CACHE_DIR=$W/cache
export PROVIUM_KEPT_DIR=$W/kept   # `run --keep` registers kept VMs there (runner/kept.h)
unset PROVIUM_EVENTS PROVIUM_JOBS PROVIUM_TIMEOUT PROVIUM_BACKEND
n=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
# nok DESC [DETAIL...]: a failure with "# " detail lines
nok() {
  n=$((n + 1)); echo "not ok $n - $1"; shift
  local l; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}
# check DESC CMD...: ok when CMD succeeds
check() { local d=$1; shift; if "$@" > "$W/check.out" 2>&1; then ok "$d"; else nok "$d" "$(tail -5 "$W/check.out")"; fi; }
# expect_code WANT DESC CMD...: runs CMD (stdout in $W/out, stderr in $W/err)
expect_code() {
  local want=$1 d=$2 got; shift 2
  "$@" > "$W/out" 2> "$W/err"; got=$?
  if [ "$got" = "$want" ]; then ok "$d (exit $got)"; else
    nok "$d: exit $got, want $want" "$(tail -5 "$W/err")" "$(tail -5 "$W/out")"; fi
}
# events FILE: the recorded stream as JSON lines (decoded by `provium events`)
events() { "$PROVIUM" events --format json "$1"; }
# gone PID: true when PID exits (or is a zombie) within 3 s
gone() {
  local i st
  for i in $(seq 30); do
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ] && return 0
    sleep 0.1
  done
  return 1
}
done_testing() { echo "1..$n"; }
