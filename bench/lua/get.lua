-- GET BENCH_PATH as a random one of the bench users.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

function init(args)
  statuses = {}
  tokens = load_tokens()
  path = os.getenv("BENCH_PATH")
end

function request()
  local headers = {}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  count(status)
end
