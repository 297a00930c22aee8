-- wrk script for the redirect benchmark: random codes from a sample, a random client
-- address per request (X-Forwarded-For, trusted from loopback as behind an ingress), a
-- browser user agent; WRK_DELAY_MS paces each connection (for the half-peak latency run).
local codes = {}
for line in io.lines(os.getenv("WRK_CODES")) do codes[#codes + 1] = line end
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

function setup(thread)
  thread:set("id", tostring(thread))
end

function init(args)
  math.randomseed(os.time() + tonumber(string.sub(tostring({}), 8), 16) % 100000)
end

function request()
  local code = codes[math.random(#codes)]
  local ip = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format("GET", "/r/" .. code, {["X-Forwarded-For"] = ip, ["User-Agent"] = ua})
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
