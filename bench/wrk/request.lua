-- One endpoint under load. Environment (set by bench/run.py):
--   BENCH_TOKEN   bearer token to send (empty: no Authorization header)
--   BENCH_METHOD  GET (default) or POST (creates a customer with a unique email per request)
-- done() prints one JSON line that bench/run.py parses.
local token = os.getenv("BENCH_TOKEN") or ""
local method = os.getenv("BENCH_METHOD") or "GET"
local counter = 0
local threads = {}

if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.headers["Accept"] = "application/json"
if method == "POST" then
  wrk.headers["Content-Type"] = "application/json"
end

function setup(thread)
  thread:set("tag", string.format("%d-%d", os.time(), #threads + 1))
  table.insert(threads, thread)
end

function init(args)
  -- "tag" is set per thread by setup(); it keeps emails unique across threads and runs.
  tag = tag or tostring(math.random(1, 1000000000))
  -- The tag as one word ("r1765000000t1"): a name's words are what duplicate detection groups by.
  unique = "r" .. string.gsub(tag, "-", "t")
  -- Phone numbers "+86 13" and nine digits: the run's second and thread, then the counter.
  local started, thread_index = string.match(tag, "^(%d+)-(%d+)$")
  phone_base = ((tonumber(started or 0) % 10000) * 10 + tonumber(thread_index or 0) % 10) * 10000
end

function request()
  if method ~= "POST" then
    return wrk.format("GET")
  end
  counter = counter + 1
  -- A new customer each time, as a sales team adds them: a name and a phone number no earlier run
  -- gave (repeated ones would make every create a probable duplicate of the last runs' records,
  -- and what a create costs would depend on how often the dataset had been benchmarked before).
  local body = string.format(
    '{"name":"Bench Customer %s","company":"Bench Co","email":"bench-%s-%d@example.com","phone":"+86 13%09d","status":"lead"}',
    unique .. "n" .. counter, tag, counter, phone_base + counter % 10000)
  -- nil headers: wrk.format() then sends wrk.headers (a table here would replace them).
  return wrk.format("POST", nil, nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.2f,"mean_ms":%.3f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    non2xx, errors))
end
