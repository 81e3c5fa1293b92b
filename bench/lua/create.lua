-- POST /api/tasks/create (image_analysis) as a random one of the bench users.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

function init(args)
  statuses = {}
  tokens = load_tokens()
end

function request()
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/tasks/create", headers,
    '{"type":"image_analysis","inputData":{"prompt":"bench"}}')
end

function response(status, headers, body)
  count(status)
end
