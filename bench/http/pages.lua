-- wrk script: GET a random page from the list in CS_PATHS (one path a line),
-- each thread with its own random sequence, keep-alive.
local paths = {}
for line in io.lines(os.getenv("CS_PATHS")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + (tonumber(tid) or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  io.write(string.format("CS_RESULT requests=%d duration_us=%d errors_status=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
