-- wrk script for the pipeline benchmark's full-speed phase: each thread posts its own slice of
-- the prepared conversion bodies (one JSON per line of WRK_BODIES) exactly once, then stops.
-- Connections that ask for a request after the slice is used up get a cheap GET /healthz,
-- which is never counted. WRK_THREADS must equal wrk's -t. wrk calls request() once on the
-- first thread's state to check the script: that thread's list starts with a GET /healthz
-- for it, so no conversion is lost to the check.
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local threads = tonumber(os.getenv("WRK_THREADS"))
local auth = "Bearer " .. os.getenv("WRK_KEY")
local index = 0

function setup(thread)
  thread:set("index", index)
  index = index + 1
end

local mine, count, next_body, answered, failed

function init(args)
  mine, count = {}, 0
  if index == 0 then mine[1] = false end
  for i = index + 1, #bodies, threads do
    mine[#mine + 1] = bodies[i]
    count = count + 1
  end
  next_body, answered, failed = 1, 0, 0
end

function request()
  local body = mine[next_body]
  next_body = next_body + 1
  if not body then
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/v1/conversions",
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then
    answered = answered + 1
  elseif status ~= 200 then
    failed = failed + 1
    io.stderr:write("conversion answered " .. status .. ": " .. body .. "\n")
  end
  if answered + failed >= count then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format("wrk: requests=%d errors=%d p50_ms=%.1f p99_ms=%.1f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
