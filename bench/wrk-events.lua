-- wrk script: single-event POSTs, each unique, spread over 1,000 sessions.
-- Usage: wrk -t2 -c256 -d10s -s bench/wrk-events.lua http://127.0.0.1:8080
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  counter = 0
end

request = function()
  counter = counter + 1
  local session = "bench-" .. (counter % 1000)
  local body = string.format(
    '{"event_type":"tool_use","timestamp":"2026-11-22T10:00:00Z","event_id":"t%s-%d","data":{"tool":"Bash","n":%d}}',
    tid, counter, counter)
  return wrk.format("POST", "/v1/sessions/" .. session .. "/events",
    {["Content-Type"] = "application/json"}, body)
end
