-- clock.lua — Clock (API.md): the guest clocks, read through the agent. The sandbox
-- shares the host's clocks, so it cannot set or advance guest time; sleep waits host time.
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

local Clock, K_mt = provium._class("Clock", "clock")
V.Clock = Clock
K_mt.__tostring = function(c) return ("Clock(%s)"):format(c._vmname) end

function Clock._new(vm)
  return setmetatable({ _vm = vm, _vmname = vm.name }, K_mt)
end

local function get_ns(c, clock, op)
  local conn = c._vm:_link(op)
  return conn:call("clock_get", { clock = clock }, V.deadline(nil), op).ns
end

function Clock:now_ns() return get_ns(self, "realtime", "clock:now_ns") end
function Clock:now() return get_ns(self, "realtime", "clock:now") / 1e9 end
function Clock:monotonic() return get_ns(self, "monotonic", "clock:monotonic") / 1e9 end

-- guest minus host wall clock (seconds), measured around one round trip
function Clock:offset()
  local before = provium._c_vm.wall_ns()
  local g = get_ns(self, "realtime", "clock:offset")
  local after = provium._c_vm.wall_ns()
  return (g - (before + after) / 2) / 1e9
end

local function unsupported(op)
  return function(self)
    perr({ code = "unsupported", op = "clock:" .. op, vm = self._vmname,
      message = "the sandbox backend shares the host's wall clock; use the kvm backend to set or advance guest time" }, 2)
  end
end
Clock.set = unsupported("set")
Clock.set_ns = unsupported("set_ns")
Clock.advance = unsupported("advance")

-- The sandbox's guest time is the host's: s of guest time pass in s of host time (the
-- task yields meanwhile; the guest's monotonic clock is read to be sure).
function Clock:sleep(s, opts)
  provium._arg(s, "nonneg", "clock:sleep", self._vmname, "seconds")
  opts = provium._opts(opts, "clock:sleep", self._vmname, "timeout:secs")
  local m0 = get_ns(self, "monotonic", "clock:sleep")
  local deadline = S.now() + (opts.timeout or (s + 30))
  local want = m0 + math.floor(s * 1e9)
  while true do
    local m = get_ns(self, "monotonic", "clock:sleep")
    if m >= want then return end
    if S.now() >= deadline then
      perr({ code = "timeout", op = "clock:sleep", vm = self._vmname,
        message = ("guest time did not pass %.3f s"):format(s) }, 2)
    end
    S.sleep(math.max(0.001, math.min((want - m) / 1e9, 0.5)), "clock:sleep on vm " .. self._vmname)
  end
end
