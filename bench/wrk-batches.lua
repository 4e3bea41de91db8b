-- wrk script: batched POSTs of 100 unique events each, spread over 1,000 sessions.
-- Usage: wrk -t2 -c32 -d10s -s bench/wrk-batches.lua http://127.0.0.1:8080
local counter = 0
local thread_id = 0
-- Each thread gets its own number: unseeded math.random gives every thread the same value.
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local events = {}
  for i = 1, 100 do
    events[i] = string.format(
      '{"event_type":"tool_use","timestamp":"2026-11-22T10:00:00Z","event_id":"b%s-%d-%d","data":{"tool":"Bash","i":%d}}',
      tid, counter, i, i)
  end
  return wrk.format("POST", "/v1/sessions/batch-" .. (counter % 1000) .. "/events",
    {["Content-Type"] = "application/json"}, '{"events":[' .. table.concat(events, ",") .. ']}')
end
