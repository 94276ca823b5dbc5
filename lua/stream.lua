-- stream.lua — Tail and ConsoleStream (API.md "Streams"): next, read_until, expect,
-- drain, close, eof over a source of bytes. Sources: an agent tail/tail_fd request
-- (vm:tail_file, vm:fd_stream, f:tail_stream), a spawned process's stdout/stderr
-- (p:stdout_stream), and the console ring (console:read).
-- A source has pull() -> data, eof (never blocks), wait(deadline) -> true when pull may
-- have more, close(), and keeps_until_close (pull once more after close()).
local provium = provium
local S = provium._sched
local perr = provium._error
local V = provium._vm or {}
provium._vm = V

-- Methods check their receiver and arguments (provium._class, provium._opts)
local Stream, Stream_mt = provium._class("Stream", "stream")
V.Stream = Stream
local MATCH_OPTS = "plain:bool timeout:secs"
Stream_mt.__tostring = function(s)
  return ("%s(%s, %s)"):format(s._kind, s._what, s._eof and "eof" or (s._closed and "closed" or "open"))
end
Stream_mt.__close = function(s) s:close() end
Stream_mt.__gc = nil

local function new(kind, vmname, what, src)
  return setmetatable({ _kind = kind, _vmname = vmname, _what = what, _src = src,
    _buf = "", _eof = false, _closed = false, _seen = "" }, Stream_mt)
end
V.stream_new = new

-- moves what the source has into the buffer; true if anything came
local function fill(s)
  if s._eof then return false end
  local d, eof = s._src:pull()
  local got = false
  if d and d ~= "" then
    s._buf = s._buf .. d
    s._seen = (s._seen .. d):sub(-2048)
    got = true
  end
  if eof then s._eof = true; got = true end
  return got
end

-- waits until fill() brings something or the deadline passes; false at the deadline
local function more(s, deadline)
  if fill(s) then return true end
  if s._eof or s._closed then return false end
  while true do
    if deadline and S.now() >= deadline then return fill(s) end
    s._src:wait(deadline)
    if fill(s) then return true end
    if s._eof then return false end
  end
end

-- s:next([opts]) -> next line (without "\n"), or nil at EOF / on timeout (s:eof() tells)
function Stream:next(opts)
  opts = provium._opts(opts, "stream:next", self._vmname, "timeout:secs")
  local deadline = V.deadline(opts)
  self._timed_out = false
  while true do
    local nl = self._buf:find("\n", 1, true)
    if nl then
      local line = self._buf:sub(1, nl - 1)
      self._buf = self._buf:sub(nl + 1)
      return line
    end
    if self._eof or self._closed then
      if self._buf ~= "" then
        local line = self._buf
        self._buf = ""
        return line
      end
      return nil
    end
    if not more(self, deadline) then
      if not self._eof then self._timed_out = true; return nil end
    end
  end
end

-- finds pattern in the buffer; returns start, end, captures. A malformed Lua pattern
-- is the caller's mistake: invalid, not a Lua error from string.find.
local function find(s, pattern, plain, op)
  if plain then
    local a, b = s._buf:find(pattern, 1, true)
    return a, b
  end
  local r = table.pack(pcall(string.find, s._buf, pattern))
  if not r[1] then
    perr({ code = "invalid", op = op, vm = s._vmname, message = ("pattern %q is not a Lua pattern: %s (pass {plain=true} for plain text)"):format(
      pattern, (tostring(r[2]):gsub("^.-:%d+: ", ""))) }, 4)
  end
  return table.unpack(r, 2, r.n)
end

local function wait_match(self, pattern, opts, op)
  provium._arg(pattern, "string", op, self._vmname, "pattern")
  opts = provium._opts(opts, op, self._vmname, MATCH_OPTS)
  local deadline = V.deadline(opts)
  while true do
    local r = table.pack(find(self, pattern, opts.plain, op))
    if r[1] then return r end
    if self._eof or self._closed then return nil end
    if not more(self, deadline) and not self._eof then return nil end
  end
end

-- s:read_until(pattern [, opts]) -> text up to and including the first match, or nil
-- at EOF / on timeout
function Stream:read_until(pattern, opts)
  local r = wait_match(self, pattern, opts, "stream:read_until")
  if not r then return nil end
  local text = self._buf:sub(1, r[2])
  self._buf = self._buf:sub(r[2] + 1)
  return text
end

-- s:expect(pattern [, opts]) -> the captures (or the match); raises timeout with the
-- last 2 KiB seen
function Stream:expect(pattern, opts)
  local t0 = S.now()
  local r = wait_match(self, pattern, opts, "stream:expect")
  if not r then
    perr({ code = "timeout", op = "stream:expect", vm = self._vmname,
      message = ("%q did not appear in %s within %.1f s%s; last output:\n%s"):format(pattern, self._what,
        S.now() - t0, self._eof and " (stream ended)" or (self._closed and " (stream closed)" or ""),
        self._seen) }, 2)
  end
  local text = self._buf:sub(r[1], r[2])
  self._buf = self._buf:sub(r[2] + 1)
  if r.n > 2 then return table.unpack(r, 3, r.n) end
  return text
end

-- s:drain() -> everything buffered now (without waiting)
function Stream:drain()
  if self._src.poll_now then self._src.poll_now() end
  fill(self)
  local b = self._buf
  self._buf = ""
  return b
end

-- s:eof() -> true once the source ended or the stream was closed and its buffer is
-- read (false after a timeout)
function Stream:eof()
  return self._eof or (self._closed and self._buf == "")
end

function Stream:close()
  if self._closed then return end
  pcall(self._src.close, self._src)
  -- a process's output that arrived before the close is this stream's (process.lua)
  if self._src.keeps_until_close then fill(self) end
  self._closed = true
end

-- Sources -------------------------------------------------------------------------------------

-- An agent request streaming frames named `name` (tail, tail_fd).
function Stream._tail(vm, conn, id, what)
  local src = { pending = "", pending_eof = false }
  function src.pull()
    local d, eof = conn.c:stream(id, "tail")
    local p = src.pending .. d
    src.pending = ""
    eof = eof or src.pending_eof or (conn.c:closed() ~= nil)
    return p, eof
  end
  function src.wait(_, deadline)
    local ok = pcall(conn.wait, conn, function()
      local d, eof = conn.c:stream(id, "tail")
      if d ~= "" or eof then
        src.pending = src.pending .. d
        src.pending_eof = src.pending_eof or eof
        return true
      end
    end, deadline, ("waiting for %s on vm %s"):format(what, vm.name))
    if not ok then src.pending_eof = true end
  end
  function src.poll_now() conn:poll_now() end
  function src.close()
    if conn.c:closed() == nil then
      pcall(conn.call, conn, "cancel", { target = id }, S.now() + 5, "stream:close")
    end
    conn.c:forget(id)
  end
  return new("Tail", vm.name, what, src)
end
