-- Mixed traffic as the frontend makes it: mostly reads, a quarter task creations, some cancels of
-- the tasks this connection created.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

function init(args)
  statuses = {}
  tokens, token_of = load_tokens()
  created = {}
end

local function auth(token)
  return { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function request()
  local token = tokens[math.random(#tokens)]
  local roll = math.random(100)
  if roll <= 35 then
    return wrk.format("GET", "/api/users/credits", auth(token))
  elseif roll <= 55 then
    return wrk.format("GET", "/api/tasks?limit=20", auth(token))
  elseif roll <= 62 then
    return wrk.format("GET", "/api/tasks/stats", auth(token))
  elseif roll <= 67 then
    return wrk.format("GET", "/api/billing/plans", {})
  elseif roll <= 92 or #created == 0 then
    return wrk.format("POST", "/api/tasks/create", auth(token),
      '{"type":"video_generation","inputData":{"prompt":"soak"}}')
  else
    local item = table.remove(created, math.random(#created))
    return wrk.format("PATCH", "/api/tasks/" .. item.id .. "/cancel", auth(item.token))
  end
end

function response(status, headers, body)
  count(status)
  if status == 201 and #created < 200 then
    -- Responses of one thread's connections interleave: the task names its owner.
    local id, user = string.match(body, '"task":{"id":"([%w%-]+)","userId":"([^"]+)"')
    if id and token_of[user] then
      created[#created + 1] = { id = id, token = token_of[user] }
    end
  end
end
