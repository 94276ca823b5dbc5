#!/usr/bin/env bash
# net_cleanup.sh — the run's network namespace (runner/netns.c) is removed at the end
# of `provium run`: after a normal run, after the worker crashed (SIGKILL), and after
# SIGINT and SIGTERM; two files of one run share it; nothing of the run stays in `ip netns` or in
# the host's `ip link`.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
  echo "ok 1 # SKIP needs root and /dev/net/tun"; echo "1..1"; exit 0
fi
mkdir -p "$W/ok" "$W/crash" "$W/int"
cat > "$W/ok/a_test.lua" <<'L'
local net = provium:bridge("n")
local v = provium:vm("a")
net:attach(v)
test("ping the own address", function(t) t:match(v:succeed("ping -c 1 -W 2 " .. v:ip()), "1 packets received") end)
test("the run's namespace is named", function(t)
  t:match(provium._c_net.run_name(), "^provium%-%d+%-%x+$")
  io.open(provium.env("MARK"), "w"):write(provium._c_net.run_name()):close()
end)
L
cp "$W/ok/a_test.lua" "$W/ok/b_test.lua"
cat > "$W/crash/c_test.lua" <<'L'
local net = provium:bridge("n")
net:attach(provium:vm("a"))
test("the worker dies", function(t)
  local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
  os.execute("kill -9 " .. pid)
end)
L
cat > "$W/int/i_test.lua" <<'L'
local net = provium:bridge("n", { nat = true })
net:attach(provium:vm("a"))
test("waits", function(t)
  io.open(provium.env("MARK"), "w"):write(provium._c_net.run_name()):close()
  provium.sleep(60)
end)
L

# left NAME: what of run NAME is still there (empty when nothing)
left() {
  { ip netns list | grep -F "$1"; ip -o link 2>/dev/null | grep -E "pvh${1##*-}"; } 2>/dev/null
}

MARK=$W/okmark "$PROVIUM" run -j 2 "$W/ok" > "$W/out" 2> "$W/err"; code=$?
name=$(cat "$W/okmark" 2>/dev/null)
if [ "$code" = 0 ]; then ok "two files with bridges and VMs pass in one run"; else nok "two files with bridges" "$(tail -20 "$W/err")"; fi
if [ -n "$name" ] && [ -z "$(left "$name")" ]; then ok "nothing of $name is left after a normal run"; else nok "leftovers after a normal run ($name)" "$(left "$name")"; fi

"$PROVIUM" run "$W/crash" > "$W/out" 2> "$W/err"; code=$?
if [ "$code" = 1 ] && grep -q "worker crashed" "$W/out" "$W/err" ; then ok "a SIGKILLed worker is a file error"; else nok "worker crash" "$(tail -5 "$W/err")"; fi
if [ -z "$(ip netns list | grep -E 'provium-' | while read -r n _; do p=${n#provium-}; p=${p%%-*}; kill -0 "$p" 2>/dev/null || echo "$n"; done)" ]
then ok "no namespace of a finished run is left after a worker crash"; else nok "leftover namespaces after a crash" "$(ip netns list)"; fi

MARK=$W/mark "$PROVIUM" run "$W/int" > "$W/out" 2> "$W/err" &
ppid=$!
for i in $(seq 100); do [ -s "$W/mark" ] && break; sleep 0.1; done
name=$(cat "$W/mark" 2>/dev/null)
if [ -n "$name" ] && ip netns list | grep -qF "$name"; then ok "the namespace exists while the run lasts ($name)"; else nok "namespace during the run" "$(ip netns list)"; fi
if [ -n "$name" ] && ip -o link 2>/dev/null | grep -q "pvh${name##*-}"; then ok "the NAT veth's host end exists while the run lasts"; else nok "NAT veth during the run" "$(ip -o link)"; fi
kill -INT "$ppid"; wait "$ppid"; code=$?
if [ "$code" = 130 ]; then ok "SIGINT ends the run with 130"; else nok "SIGINT exit code $code" "$(tail -5 "$W/err")"; fi
if [ -n "$name" ] && [ -z "$(left "$name")" ]; then ok "nothing of $name is left after SIGINT"; else nok "leftovers after SIGINT" "$(left "$name")"; fi
rm -f "$W/mark"
MARK=$W/mark "$PROVIUM" run "$W/int" > "$W/out" 2> "$W/err" &
ppid=$!
for i in $(seq 100); do [ -s "$W/mark" ] && break; sleep 0.1; done
name=$(cat "$W/mark" 2>/dev/null)
kill -TERM "$ppid"; wait "$ppid"
if [ -n "$name" ] && [ -z "$(left "$name")" ]; then ok "nothing of $name is left after SIGTERM"; else nok "leftovers after SIGTERM ($name)" "$(left "$name")"; fi
done_testing
