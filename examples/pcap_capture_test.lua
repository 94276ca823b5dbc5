-- examples/pcap_capture_test.lua — capture traffic to a pcap file that `tcpdump -r`
-- reads. A client fetches a page from a server over a bridge while the bridge
-- capture writes every frame (BPF filter "tcp port 80") to a pcap file; the test
-- reads the packets back as Lua tables and the file with tcpdump.
-- Both backends (captures are libpcap on the bridge, in the run's namespace).

local net = provium:bridge("lan")
local client, server = provium:vm("client"), provium:vm("server")
net:attach(client); net:attach(server)
server:mkdir("/srv")
server:write_file("/srv/index.html", "hello over http\n")
server:succeed("httpd -p 80 -h /srv")
server:wait_for_port(80)

local function have(cmd)
  local f = io.popen("command -v " .. cmd .. " 2>/dev/null")
  local out = f:read("a"); f:close()
  return out ~= ""
end

test("an HTTP exchange, captured to a pcap that tcpdump -r reads", function(t)
  if not have("tcpdump") then t:skip("tcpdump is not installed on the host (apt-get install tcpdump)") end
  local path = provium.tmpdir() .. "/http.pcap"
  local cap = net:capture({ path = path, filter = "tcp port 80" })
  t:eq(client:succeed("wget -q -O - http://" .. server:ip() .. "/index.html"), "hello over http\n")
  -- in Lua: the client's SYN to port 80 is the first packet
  local syn = cap:next({ timeout = 5 })
  t:eq(syn.src, client:ip()); t:eq(syn.dst, server:ip()); t:eq(syn.dport, 80)
  -- the close: wait until both FINs crossed, then finish the file
  wait_until(function() return cap:stats().matched >= 8 end, { timeout = 5, message = "the whole exchange" })
  cap:close()

  local f = io.popen("tcpdump -n -r " .. path .. " 2>&1")
  local out = f:read("a"); f:close()
  t:log(out)
  local s, c = server:ip():gsub("%.", "%%."), client:ip():gsub("%.", "%%.")
  t:match(out, c .. "%.%d+ > " .. s .. "%.80: Flags %[S%]", "the SYN")
  t:match(out, s .. "%.80 > " .. c .. "%.%d+: Flags %[S%.%]", "the SYN-ACK")
  t:match(out, "HTTP: GET /index%.html HTTP/1%.1", "the request")
end)
