-- One wrk scenario, chosen by the SCENARIO environment variable:
--   unique   POST /ingest with a fresh run_id every request
--   retry    POST /ingest with run ids drawn from a pool of 100
--   healthz  GET /healthz
--   admin    POST /orgs with a fresh name every request
-- Every response's status is counted, and done() prints one summary line.

local scenario = os.getenv("SCENARIO") or "healthz"
local token = os.getenv("BENCH_TOKEN") or ""
-- Eight hex digits chosen by the caller, so that two runs never share ids.
local nonce = os.getenv("BENCH_NONCE") or "00000000"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  statuses = {}
  counter = 0
  math.randomseed(thread_id * 7919 + tonumber(nonce, 16) % 100000)
end

local function run_id(n)
  -- nonce-thread-4xxx-8xxx-counter: unique per run, thread and request.
  return string.format("%s-%04x-4000-8000-%012x", nonce, thread_id, n)
end

local function ingest_body(id)
  return '{"run_id":"' .. id .. '","status":"passed","duration_ms":1234,'
    .. '"timestamp":"2026-01-12T10:10:00Z"}'
end

local ingest_headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. token,
}
local admin_headers = { ["Content-Type"] = "application/json" }

-- Requests that never change are formatted once per thread, so that the
-- load generator spends its share of the two cores on sending, not on Lua.
local fixed = {}

local function retry_request(n)
  if fixed[n] == nil then
    -- The pool is shared by every thread: thread 0, ids 1..100.
    local id = string.format("%s-0000-4000-8000-%012x", nonce, n)
    fixed[n] = wrk.format("POST", "/ingest", ingest_headers, ingest_body(id))
  end
  return fixed[n]
end

function request()
  counter = counter + 1
  if scenario == "unique" then
    return wrk.format("POST", "/ingest", ingest_headers, ingest_body(run_id(counter)))
  elseif scenario == "retry" then
    return retry_request(math.random(1, 100))
  elseif scenario == "admin" then
    local name = string.format("bench-%s-%d-%d", nonce, thread_id, counter)
    return wrk.format("POST", "/orgs", admin_headers, '{"name":"' .. name .. '"}')
  else
    fixed.healthz = fixed.healthz or wrk.format("GET", "/healthz")
    return fixed.healthz
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, string.format("%d:%d", status, count))
  end
  table.sort(parts)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d statuses=%s "
      .. "socket_errors=%d,%d,%d,%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, table.concat(parts, ","),
    errors.connect, errors.read, errors.write, errors.timeout))
end
