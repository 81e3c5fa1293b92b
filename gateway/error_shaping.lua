-- Shapes every gRPC error that reaches the edge into the platform's JSON error contract
-- {"error": "<message>", "statusCode": <http>}, and applies success statuses chosen by services
-- (x-http-status, e.g. 201 for creations). Envoy's own local replies are shaped by local_reply_config.

-- gRPC code -> HTTP status (google.rpc.Code mapping, with ABORTED/FAILED_PRECONDITION as 409).
local CODE_HTTP = {
  [1] = 499, [2] = 500, [3] = 400, [4] = 504, [5] = 404, [6] = 409, [7] = 403, [8] = 429,
  [9] = 400, [10] = 409, [11] = 400, [12] = 501, [13] = 500, [14] = 503, [15] = 500, [16] = 401,
}

-- ErrorInfo reason (sent as x-error-reason) -> HTTP status, where it is more precise than the code.
local REASON_HTTP = {
  INSUFFICIENT_CREDITS = 402,
  INVALID_STATE = 409,
  PAYLOAD_TOO_LARGE = 413,
  NOT_CONFIGURED = 503,
}

-- Messages for errors that did not come from a StudioX service (Envoy or transport failures):
-- their own text may describe internals, so it is never shown.
local GENERIC = {
  [400] = "Bad request",
  [401] = "Unauthorized",
  [403] = "Forbidden",
  [404] = "Not found",
  [413] = "Payload too large",
  [429] = "Too many requests",
  [499] = "Request cancelled",
  [501] = "Not implemented",
  [503] = "Service unavailable",
  [504] = "Gateway timeout",
}

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

local GRPC_HEADERS = { "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding", "x-error-reason" }

-- Raw gRPC clients (content-type application/grpc) get gRPC responses untouched.
function envoy_on_request(handle)
  local content_type = handle:headers():get("content-type") or ""
  if content_type:sub(1, 16) == "application/grpc" then
    handle:streamInfo():dynamicMetadata():set("studiox", "grpc_client", "1")
  end
end

function envoy_on_response(handle)
  local meta = handle:streamInfo():dynamicMetadata():get("studiox")
  if meta ~= nil and meta["grpc_client"] == "1" then
    return
  end
  local headers = handle:headers()

  local chosen = headers:get("x-http-status")
  if chosen ~= nil then
    headers:remove("x-http-status")
    if tonumber(chosen) ~= nil then
      headers:replace(":status", chosen)
    end
  end

  local grpc_status = headers:get("grpc-status")
  if grpc_status == nil or grpc_status == "0" then
    for _, name in ipairs(GRPC_HEADERS) do
      headers:remove(name)
    end
    return
  end

  local code = tonumber(grpc_status) or 2
  local reason = headers:get("x-error-reason")
  local status = REASON_HTTP[reason or ""] or CODE_HTTP[code] or 500
  local message
  if reason ~= nil and status < 500 or reason == "NOT_CONFIGURED" then
    message = percent_decode(headers:get("grpc-message") or "")
  elseif status == 500 then
    message = "Internal server error"
  else
    message = GENERIC[status] or "Error"
  end

  for _, name in ipairs(GRPC_HEADERS) do
    headers:remove(name)
  end
  headers:replace(":status", tostring(status))
  headers:replace("content-type", "application/json")
  handle:body(true):setBytes('{"error":' .. json_string(message) .. ',"statusCode":' .. status .. '}')
end
