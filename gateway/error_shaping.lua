-- Shapes every gRPC error that reaches the edge into the platform's JSON error contract
-- {"error": "<message>", "statusCode": <http>}, and applies success statuses chosen by services
-- (x-http-status, e.g. 201 for creations). Envoy's own local replies are shaped by local_reply_config;
-- the JSON transcoder's 400s pass through here too and are rewritten into plain messages, since
-- theirs name proto types and quote parser snippets of the request.

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

-- Transcoder wording for a field's expected type -> what a client should send instead.
local TYPE_WORDS = {
  TYPE_INT32 = "must be a whole number between -2147483648 and 2147483647",
  TYPE_SINT32 = "must be a whole number between -2147483648 and 2147483647",
  TYPE_SFIXED32 = "must be a whole number between -2147483648 and 2147483647",
  TYPE_UINT32 = "must be a whole number between 0 and 4294967295",
  TYPE_FIXED32 = "must be a whole number between 0 and 4294967295",
  TYPE_INT64 = "must be a whole number",
  TYPE_SINT64 = "must be a whole number",
  TYPE_SFIXED64 = "must be a whole number",
  TYPE_UINT64 = "must be a whole number",
  TYPE_FIXED64 = "must be a whole number",
  TYPE_DOUBLE = "must be a number",
  TYPE_FLOAT = "must be a number",
  TYPE_BOOL = "must be true or false",
  TYPE_STRING = "must be a string",
  TYPE_BYTES = "must be base64 text",
  TYPE_ENUM = "is not one of the accepted values",
  ["type.googleapis.com/google.protobuf.Struct"] = "must be a JSON object",
  ["type.googleapis.com/google.protobuf.ListValue"] = "must be a list",
  ["type.googleapis.com/google.protobuf.Timestamp"] = "must be an RFC 3339 timestamp",
}

local MAX_NAME = 64

-- A field path as the client wrote it: proto's snake_case segments in JSON's lowerCamelCase
-- (input_data -> inputData), bounded, since Struct keys along the path are client input.
local function json_path(path)
  local out = path:gsub("_(%l)", function(c) return c:upper() end)
  if #out > MAX_NAME then
    out = out:sub(1, MAX_NAME) .. "..."
  end
  return out
end

local function bounded(name)
  if #name > MAX_NAME then
    return name:sub(1, MAX_NAME) .. "..."
  end
  return name
end

-- `raw` is the transcoder's message as local_reply_config wrote it: inside a JSON string, so quotes
-- appear as \" and newlines as \n or \u000a. Only known shapes are translated; anything else is a
-- bare "Bad request" (its text might name internals).
local function plain_transcoder_message(raw)
  local name = raw:match('^Could not find field \\"([^"\\]+)\\" in the type')
  if name then
    return 'Unknown query parameter "' .. bounded(name) .. '"'
  end
  name = raw:match('^Encountered a non%-leaf field \\"([^"\\]+)\\" that is not a message')
  if name then
    return 'Query parameter "' .. json_path(name) .. '" has no sub-fields'
  end
  local path, value, kind = raw:match("^([%w_%.]*): invalid value (.-) for type (%S+)$")
  if path then
    if value:find("^Starting an object on a scalar field") then
      -- Here protobuf names the field where the type belongs.
      return json_path(kind) .. ": must be a single value, not an object"
    end
    local words = TYPE_WORDS[kind]
    if words == nil and kind:find("^[%w_]+%.[%w_%.]+$") then
      words = TYPE_WORDS.TYPE_ENUM -- a message or enum type of ours: only enums parse from text
    end
    if path == "" then
      return "Request body has a value of the wrong type"
    end
    return json_path(path) .. ": " .. (words or "has the wrong type")
  end
  if raw:find("Proto field is not repeating, cannot start list", 1, true) then
    return "Request body has a list where a single value is expected"
  end
  if raw:find("Root element must be a message", 1, true) then
    return "Request body must be a JSON object"
  end
  if raw:find("^Message too deep") then
    return "Request body is nested too deeply"
  end
  if raw:find("non UTF%-8") then
    return "Request body is not valid UTF-8"
  end
  -- JSON syntax errors: a fixed sentence, then a newline and a snippet of the body around the error.
  local sentence = raw:match("^(.-)\\n") or raw:match("^(.-)\\u000a")
  if sentence then
    if #sentence <= 120 and sentence:find("^[%w%s%.,:;'%-{}%[%]]+$") then
      return "Request body is not valid JSON: " .. sentence
    end
    return "Request body is not valid JSON"
  end
  return "Bad request"
end

local GRPC_HEADERS = { "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-accept-encoding", "x-error-reason" }

local function rewrite_local_400(handle)
  local body = handle:body(true)
  if body == nil then
    return
  end
  -- Bounded by the header limit: a transcoder message quotes at most a query parameter name.
  local raw = body:getBytes(0, math.min(body:length(), 65536))
  raw = raw:match('^{"error":"(.*)","statusCode":400}') or ""
  local reply = '{"error":' .. json_string(plain_transcoder_message(raw)) .. ',"statusCode":400}'
  -- A headers object taken before body() is out of scope now; these headers are still unsent.
  local headers = handle:headers()
  headers:replace("content-type", "application/json")
  headers:replace("content-length", tostring(#reply))
  body:setBytes(reply)
end

-- HTTP allows header names and values that gRPC metadata refuses (`a&b`, an `x-bin` that is not
-- base64, `grpc-*` that only the transport sets); forwarded, any of them fails the call with a 500.
-- A JSON client's request keeps the headers gRPC can carry; the others mean nothing to a service.
local function drop_untransportable_headers(headers)
  local doomed = {}
  for name, _ in pairs(headers) do
    if name:sub(1, 1) ~= ":" and (name:find("[^0-9a-z_.-]") or name:sub(1, 5) == "grpc-"
        or name:sub(-4) == "-bin") then
      doomed[#doomed + 1] = name
    end
  end
  for _, name in ipairs(doomed) do
    headers:remove(name)
  end
end

-- Raw gRPC clients (content-type application/grpc) get gRPC responses untouched.
function envoy_on_request(handle)
  local content_type = handle:headers():get("content-type") or ""
  if content_type:sub(1, 16) == "application/grpc" then
    handle:streamInfo():dynamicMetadata():set("studiox", "grpc_client", "1")
  else
    drop_untransportable_headers(handle:headers())
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
  if grpc_status == nil and headers:get(":status") == "400" then
    -- Services always answer with a grpc-status: a 400 without one is Envoy's own (transcoder).
    rewrite_local_400(handle)
    return
  end
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
