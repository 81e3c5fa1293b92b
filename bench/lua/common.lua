-- Shared by every bench script: per-thread status counts, users read from the file named by
-- BENCH_TOKENS ("<user id> <token>" per line), and a JSON summary line for bench/wrk.py to parse.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function load_tokens()
  local list, by_user = {}, {}
  local path = os.getenv("BENCH_TOKENS")
  if path then
    for line in io.lines(path) do
      local user, token = string.match(line, "^(%S+) (%S+)$")
      list[#list + 1] = token
      by_user[user] = token
    end
  end
  return list, by_user
end

function count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(merged) do
    parts[#parts + 1] = string.format('"%d":%d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ",")))
end
