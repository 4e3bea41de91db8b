-- wrk script: single-event POSTs into one scope, each unique, over 100 sessions.
-- Usage: KEY=key-b SCOPE_TAG=b wrk -t1 -c32 -d10s -s bench/wrk-scope.lua http://127.0.0.1:8080
local counter = 0
local thread_id = 0
local key = os.getenv("KEY") or ""
local tag = os.getenv("SCOPE_TAG") or "s"
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_type":"tool_use","timestamp":"2026-11-30T10:00:00Z","event_id":"%s-%s-%d","data":{"n":%d}}',
    tag, tid, counter, counter)
  return wrk.format("POST", "/v1/sessions/" .. tag .. "-" .. (counter % 100) .. "/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
