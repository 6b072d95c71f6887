-- wrk script: POST requests read from a file, one per line, "path<TAB>authorization<TAB>body"
-- (authorization "-" = no Authorization header). Driven by scripts/bench/_wrk.py:
--   BENCH_WRK_LINES    the file
--   BENCH_WRK_THREADS  wrk's -t (each thread takes every Nth line, so lines that must be
--                      sent once, like distinct fingerprints, are never sent by two threads)
--   BENCH_WRK_STATUS   "1": count response statuses (costs wrk some CPU per response)
-- Prints one line "WRK_JSON {...}" with requests, latency percentiles (us) and errors.
-- Requests are formatted once in init(): the load generator should cost little per request.

local lines_path = os.getenv("BENCH_WRK_LINES")
local thread_count = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
local count_status = os.getenv("BENCH_WRK_STATUS") == "1"

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local mine = {}
local position = 1
wrapped = 0
statuses = {}

function init(args)
   local index = 0
   for line in io.lines(lines_path) do
      if index % thread_count == id then
         local path, auth, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
         local headers = { ["Content-Type"] = "application/json" }
         if auth ~= "-" then
            headers["Authorization"] = auth
         end
         mine[#mine + 1] = wrk.format("POST", path, headers, body)
      end
      index = index + 1
   end
   if #mine == 0 then
      error("no request lines for thread " .. id .. " in " .. tostring(lines_path))
   end
end

function request()
   local formatted = mine[position]
   position = position + 1
   if position > #mine then
      -- Lines are reused from here on; the caller decides whether that matters.
      position = 1
      wrapped = wrapped + 1
   end
   return formatted
end

if count_status then
   function response(status, headers, body)
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + 1
   end
end

function done(summary, latency, requests)
   local merged = {}
   local wraps = 0
   for _, thread in ipairs(threads) do
      local counted = thread:get("statuses")
      if counted then
         for status, n in pairs(counted) do
            merged[status] = (merged[status] or 0) + n
         end
      end
      wraps = wraps + (thread:get("wrapped") or 0)
   end
   local parts = {}
   for status, n in pairs(merged) do
      parts[#parts + 1] = string.format('"%s":%d', status, n)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
      '"p99_us":%d,"mean_us":%.1f,"max_us":%d,"errors":{"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d},"wrapped":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout,
      wraps, table.concat(parts, ",")))
end
