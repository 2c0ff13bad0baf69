-- wrk script: POST canonical events to /v1/events with unique event ids.
-- Environment: CS_BATCH (events per request, default 1), CS_KEY (API key).
-- A realistic mix: for every order, a customer upsert, the order with two
-- items, a shipment, three scans and (sometimes) a review.

local batch = tonumber(os.getenv("CS_BATCH") or "1")
local key = os.getenv("CS_KEY") or ""
local counter = 0
local threads = {}
-- CS_NONCE keeps ids apart when several wrk instances run at once
local nonce = os.getenv("CS_NONCE") or tostring(os.time())

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  -- `tid` is the global set by setup() for this thread
  tid = tonumber(tid) or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = batch > 1 and "application/x-ndjson" or "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

local statuses = { "info_received", "in_transit", "delivered" }

local function event(n)
  local o = math.floor(n / 8)          -- one order per 8 events
  local k = n % 8
  local cust = string.format("c%d-%d", tid, o % 5000)
  local order = string.format("o%s-%d-%d", nonce, tid, o)
  local ts = string.format("2026-03-%02dT%02d:%02d:00Z", 1 + (o % 28), 8 + (k % 12), n % 60)
  local head = string.format('{"event_id":"%s-%d-%d","occurred_at":"%s",', nonce, tid, n, ts)
  if k == 0 then
    return head .. string.format('"type":"customer.upserted","data":{"id":"%s","email":"%s@example.de","locale":"de","timezone":"Europe/Berlin","consents":{"email":{"transactional":true,"marketing":false}}}}', cust, cust)
  elseif k == 1 then
    return head .. string.format('"type":"order.placed","data":{"id":"%s","customer_id":"%s","currency":"EUR","items":[{"sku":"KAF-250","name":"Kaffeebohnen 250 g","category":"coffee","unit_price":"8.90","quantity":2},{"sku":"MUG-01","name":"Becher","unit_price":12.5,"quantity":1,"discount":"2.50"}],"totals":{"shipping":"4.90"},"promised_delivery":{"earliest":"2026-03-03","latest":"2026-03-05"}}}', order, cust)
  elseif k == 2 then
    return head .. string.format('"type":"shipment.created","data":{"id":"s-%s","order_id":"%s","carrier":"dhl","service":"paket","tracking_number":"00340434%d%d","origin":{"postal_code":"04109","country":"DE"},"destination":{"postal_code":"10115","country":"DE"}}}', order, order, tid, o)
  elseif k <= 5 then
    return head .. string.format('"type":"tracking.event","data":{"shipment_id":"s-%s","carrier":"dhl","tracking_number":"00340434%d%d","status":"%s","carrier_code":"X%d","carrier_text":"Die Sendung wurde bearbeitet","location":{"city":"Leipzig","country":"DE"}}}', order, tid, o, statuses[k - 2], k)
  elseif k == 6 then
    return head .. string.format('"type":"feedback.submitted","data":{"id":"f-%s","kind":"review","score":5,"customer_id":"%s","order_id":"%s","text":"Schnelle Lieferung, alles bestens."}}', order, cust, order)
  else
    return head .. string.format('"type":"message.status","data":{"message_id":"m-%s","status":"delivered","channel":"email","customer_id":"%s"}}', order, cust)
  end
end

function request()
  local parts = {}
  for i = 1, batch do
    parts[i] = event(counter)
    counter = counter + 1
  end
  return wrk.format(nil, "/v1/events", nil, table.concat(parts, "\n"))
end

function done(summary, latency, requests)
  io.write(string.format("CS_RESULT requests=%d duration_us=%d errors_status=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
