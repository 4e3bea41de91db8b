-- wrk script: the request path without a commit. Every request re-sends the one event each
-- of 1,000 sessions already holds, so the session actor answers it from its dedup cache
-- (200, duplicate) and nothing reaches the writer. Run it once briefly to store the events,
-- then measure: wrk -t2 -c256 -d8s -s bench/wrk-duplicates.lua http://127.0.0.1:8080
local counter = 0

request = function()
  counter = counter + 1
  local session = "dup-" .. (counter % 1000)
  return wrk.format("POST", "/v1/sessions/" .. session .. "/events",
    {["Content-Type"] = "application/json"},
    '{"event_type":"tool_use","timestamp":"2026-11-22T10:00:00Z","event_id":"same","data":{"tool":"Bash"}}')
end
