-- wrk script: POST batches of carrier scans (NDJSON) for the shipments in
-- CS_SHIPS ("id carrier tracking_number" a line), random parcels, unique
-- event ids. Environment: CS_BATCH (default 100), CS_KEY, CS_NOW (the scans'
-- time, ISO 8601).
local batch = tonumber(os.getenv("CS_BATCH") or "100")
local key = os.getenv("CS_KEY") or ""
local at = os.getenv("CS_NOW") or "2026-03-01T10:00:00Z"
local ships = {}
for line in io.lines(os.getenv("CS_SHIPS")) do
  local id, carrier, tn = line:match("^(%S+) (%S+) (%S+)$")
  if id then ships[#ships + 1] = { id, carrier, tn } end
end
local threads = {}
local counter = 0
local nonce = tostring(os.time())
local cities = { "Leipzig", "Kassel", "Hannover", "Berlin" }

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tid = tonumber(tid) or 0
  math.randomseed(2000 + tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-ndjson"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  local parts = {}
  for i = 1, batch do
    local s = ships[math.random(#ships)]
    counter = counter + 1
    parts[i] = string.format('{"event_id":"scan-%s-%d-%d","type":"tracking.event","occurred_at":"%s","data":{"shipment_id":"%s","carrier":"%s","tracking_number":"%s","status":"in_transit","location":{"city":"%s","country":"DE"}}}',
      nonce, tid, counter, at, s[1], s[2], s[3], cities[counter % 4 + 1])
  end
  return wrk.format(nil, "/v1/events", nil, table.concat(parts, "\n"))
end

function done(summary, latency, requests)
  io.write(string.format("CS_RESULT requests=%d duration_us=%d errors_status=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
