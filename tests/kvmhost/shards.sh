# shards.sh — sourced by tier.sh and tier-arm64.sh: the linux tier (tests/linux/run.sh)
# split over several simulated KVM hosts side by side, and the harness's leftovers
# check. Each host has one vCPU and runs every Nth file (PROVIUM_LINUX_SHARD K/N); side
# by side they boot guests twice as fast as one host with two vCPUs (run.sh says why
# one). The caller has sourced tests/tap-lib.sh, defined ok/nok, and set $here (this
# directory) and $work (its temporary directory); whatever it exported (PROVIUM_BUILD,
# PROVIUM_LINUX_FILES) reaches tests/linux/run.sh inside.
#
#   kvmhost_shards LABEL PREFIX WHAT [run.sh options...]
#     LABEL   progress lines' tag ("kvmhost", "kvmhost arm64")
#     PREFIX  the word before K/N in each result's name ("linux", "arm64")
#     WHAT    the inner run, for a failure of its own ("linux tier", "arm64 linux tier")
#
# PROVIUM_KVMHOST_SHARDS (default: this machine's CPUs, at most 4) is how many hosts;
# PROVIUM_KVMHOST_TIMEOUT (seconds, default 1200) bounds each; PROVIUM_KVMHOST_MEMORY
# (MiB, default 3072) is each one's RAM. A shard whose simulated host stopped for good
# (run.sh's status 123: the emulator's lost timer interrupt, not woken) runs once more.

# inner PREFIX TAP CODE WHAT LOG LINES: the TAP an inner run wrote, renumbered into ours;
# a failure of its own (with the last LINES of LOG) when it wrote no result, or ended
# with status CODE != 0 while no test had failed
inner() {
  local before=$n
  emit "$1" < "$2"
  if [ $n -eq $before ] || { [ "$3" -ne 0 ] && [ $failed -eq 0 ]; }; then
    nok "$4 inside the simulated host ended with status $3"
    tail -"$6" "$5" | sed 's/^/# /'
  fi
}

# kvmhost_leftovers QEMU: anything of the harness still here (a QEMU process of that
# binary sharing the root, a temporary directory not listed in $work/before)?
kvmhost_leftovers() {
  pgrep -f "$1.*mount_tag=host" >/dev/null && echo "a QEMU process"
  ls -d /tmp/provium-kvmhost.* 2>/dev/null | grep -v -x -F -f "$work/before" | sed 's/^/temp dir /'
}

_kvmhost_shard() { # LABEL K N [run.sh options...]: shard K/N in its own simulated host
  local label=$1 k=$2 of=$3
  shift 3
  PROVIUM_LINUX_SHARD=$k/$of "$here/run.sh" "$@" --timeout "${PROVIUM_KVMHOST_TIMEOUT:-1200}" \
    --memory "${PROVIUM_KVMHOST_MEMORY:-3072}" --keep-log "$work/console.$k.log" \
    -- tests/linux/run.sh > "$work/linux.$k.tap" 2> >(sed -u "s/^# kvmhost: /# $label $k\/$of: /" >&2)
}

kvmhost_shards() {
  local label=$1 prefix=$2 what=$3
  shift 3
  local shards=${PROVIUM_KVMHOST_SHARDS:-$(nproc)}
  [ "$shards" -gt 4 ] && shards=4
  echo "# $label: running tests/linux/run.sh inside $shards simulated KVM host(s)" >&2
  # Everything inside runs under the emulator, many times slower than hardware: the
  # default per-test timeout is raised there (tests that set their own keep theirs).
  export PROVIUM_TIMEOUT=${PROVIUM_TIMEOUT:-300}
  local start k code pids=()
  start=$(date +%s)
  for k in $(seq "$shards"); do
    _kvmhost_shard "$label" "$k" "$shards" "$@" &
    pids+=($!)
  done
  for k in $(seq "$shards"); do
    wait "${pids[$((k - 1))]}"; code=$?
    if [ $code -eq 123 ]; then
      echo "# $label: shard $k/$shards: its simulated host stopped for good (run.sh, 123); running the shard again, once"
      echo "# $label: shard $k/$shards: its simulated host stopped for good; running it again, once" >&2
      _kvmhost_shard "$label" "$k" "$shards" "$@"; code=$?
    fi
    inner "- $prefix $k/$shards: " "$work/linux.$k.tap" $code "$what $k/$shards" "$work/console.$k.log" 40
    echo "# $label: shard $k/$shards ended with status $code" >&2
  done
  echo "# $label: the linux tier took $(( $(date +%s) - start )) s inside $shards simulated host(s)" >&2
}
