-- Replays pre-generated requests, one per line of the file given after `--`:
--   METHOD <tab> PATH <tab> BODY <tab> header <tab> value [<tab> header <tab> value ...]
-- Requests are built once in init(), so wrk only cycles through strings while measuring.
-- Each wrk thread takes its own slice of the file (every Nth line), so no request is sent
-- twice until a thread has used its whole slice; `laps` tells whether that happened.
-- done() prints one JSON line prefixed with BENCH_JSON for bench/load.py.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("slice", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

local requests = {}
local position = 0
laps = 0

local function split(line)
  local fields = {}
  local start = 1
  while true do
    local tab = string.find(line, "\t", start, true)
    if not tab then
      fields[#fields + 1] = string.sub(line, start)
      return fields
    end
    fields[#fields + 1] = string.sub(line, start, tab - 1)
    start = tab + 1
  end
end

function init(args)
  local path = args[1]
  local stride = tonumber(args[2] or "1")
  local n = 0
  for line in io.lines(path) do
    if n % stride == slice and line ~= "" then
      local f = split(line)
      local headers = {}
      for i = 4, #f - 1, 2 do
        headers[f[i]] = f[i + 1]
      end
      local body = f[3]
      if body == "" then
        body = nil
      end
      requests[#requests + 1] = wrk.format(f[1], f[2], headers, body)
    end
    n = n + 1
  end
  if #requests == 0 then
    error("no requests for this thread in " .. tostring(path))
  end
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    laps = laps + 1
  end
  return requests[position]
end

function done(summary, latency, _)
  local max_laps = 0
  for _, thread in ipairs(threads) do
    local l = thread:get("laps") or 0
    if l > max_laps then
      max_laps = l
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "connect": %d, "read": %d, "write": %d,'
      .. ' "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d,'
      .. ' "max_us": %d, "mean_us": %.1f, "laps": %d}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, max_laps))
end
