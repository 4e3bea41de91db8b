-- wrk script: every request is the first event of a new session (one live actor each).
-- Usage: wrk -t2 -c64 -d5s -s bench/wrk-new-sessions.lua http://127.0.0.1:8080
local counter = 0
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/sessions/m-" .. tid .. "-" .. counter .. "/events",
    {["Content-Type"] = "application/json"},
    '{"event_type":"session_start","timestamp":"2026-11-22T10:00:00Z"}')
end
