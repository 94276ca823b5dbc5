-- capture.lua — Capture (API.md "Streams"): a stream of packets from bridge:capture
-- (every frame a VM sends into the bridge) or nic:capture (one attachment, both
-- directions), filtered with BPF and optionally written to a pcap file
-- (devices/netpath_capture.c). Shares next/read_until/expect/drain/close/eof with
-- the text streams; the text a pattern is matched against is each packet's summary,
-- e.g. "tx icmp 10.213.0.2 > 10.213.0.3 echo-request len 98".
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V
local N = provium._net or {}
provium._net = N

local Capture, Capture_mt = provium._class("Capture", "capture", { nil_fields = { path = true, filter = true } })
N.Capture = Capture
local MATCH_OPTS = "plain:bool timeout:secs"
Capture_mt.__tostring = function(c)
  return ("Capture(%s, %s)"):format(c._what, c._closed and "closed" or "open")
end
Capture_mt.__close = function(c) c:close() end

local ICMP = { [0] = "echo-reply", [8] = "echo-request", [3] = "unreachable" }

local function summary(p)
  local s = ("%s %s %s > %s"):format(p.dir, p.proto, tostring(p.src), tostring(p.dst))
  if p.icmp_type then s = s .. " " .. (ICMP[p.icmp_type] or ("type " .. p.icmp_type)) end
  if p.sport then s = s .. (" %d > %d"):format(p.sport, p.dport) end
  return s .. " len " .. p.len
end

-- N.capture_new(what, opts, on_close, op [, vm]) -> Capture (the owner subscribes NICs
-- to c._h); op is the call that made it (bridge:capture, nic:capture)
function N.capture_new(what, opts, on_close, op, vm)
  opts = provium._opts(opts, op, vm, "filter:string path:string")
  local ok, h = pcall(provium._c_net_capture.open, opts.filter, opts.path)
  if not ok then error(h, 0) end
  return setmetatable({ _h = h, _what = what, _on_close = on_close, _closed = false, _seen = {},
    path = opts.path, filter = opts.filter }, Capture_mt)
end

local function pop(c)
  local p = c._h:pop()
  if p then
    p.summary = summary(p)
    local seen = c._seen
    seen[#seen + 1] = p.summary
    if #seen > 40 then table.remove(seen, 1) end
  end
  return p
end

-- next packet, waiting until the deadline; nil on timeout or when closed and empty
local function next_packet(c, deadline)
  while true do
    local p = pop(c)
    if p or c._closed then return p end
    if deadline and S.now() >= deadline then return nil end
    S.wait_fd(c._h:fd(), "r", deadline)
  end
end

function Capture:next(opts)
  opts = provium._opts(opts, "capture:next", nil, "timeout:secs")
  return next_packet(self, V.deadline(opts))
end

-- array of packets up to and including the first whose summary matches; nil on timeout
function Capture:read_until(pattern, opts)
  provium._arg(pattern, "string", "capture:read_until", nil, "pattern")
  opts = provium._opts(opts, "capture:read_until", nil, MATCH_OPTS)
  local deadline = V.deadline(opts)
  local got = {}
  while true do
    local p = next_packet(self, deadline)
    if not p then return nil end
    got[#got + 1] = p
    if p.summary:find(pattern, 1, opts.plain) then return got end
  end
end

-- the first packet whose summary matches (plus the pattern's captures); raises timeout
function Capture:expect(pattern, opts)
  provium._arg(pattern, "string", "capture:expect", nil, "pattern")
  opts = provium._opts(opts, "capture:expect", nil, MATCH_OPTS)
  local t0 = S.now()
  local deadline = V.deadline(opts)
  while true do
    local p = next_packet(self, deadline)
    if not p then
      perr({ code = "timeout", op = "capture:expect", message = ("no packet matching %q on %s within %.1f s; last packets:\n%s"):format(
        pattern, self._what, S.now() - t0, table.concat(self._seen, "\n")) }, 2)
    end
    local r = table.pack(p.summary:find(pattern, 1, opts.plain))
    if r[1] then return p, table.unpack(r, 3, r.n) end
  end
end

function Capture:drain()
  local r = {}
  while true do
    local p = pop(self)
    if not p then return r end
    r[#r + 1] = p
  end
end

-- Stops capturing (the pcap file is complete after this); queued packets stay readable.
function Capture:close()
  if self._closed then return end
  self._closed = true
  if self._on_close then pcall(self._on_close, self) end
  self._h:stop()
end

function Capture:eof()
  return self._closed and true or false
end

-- {matched=, overflow=}: packets that passed the filter; those the queue dropped
function Capture:stats()
  local m, o = self._h:stats()
  return { matched = m, overflow = o }
end
