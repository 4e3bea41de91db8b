-- wrk script: what a hostile tenant sends, one pattern per run (NOISE=nul|unknown|next).
--   nul      conversation_started events whose conversation_id holds a NUL
--   unknown  reads of interactions of sessions that do not exist, each a new id
--   next     commands/next on the session "queue" (which holds many queued commands)
-- Usage: KEY=key-a NOISE=nul wrk -t1 -c4 -d10s -s bench/wrk-noisy.lua http://127.0.0.1:8080
local counter = 0
local key = os.getenv("KEY") or ""
local noise = os.getenv("NOISE") or "nul"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}
request = function()
  counter = counter + 1
  if noise == "unknown" then
    return wrk.format("GET", "/v1/sessions/nobody-" .. math.random(1, 1e9) .. "-" .. counter
      .. "/interactions", headers)
  elseif noise == "next" then
    return wrk.format("POST", "/v1/sessions/queue/commands/next?wait_ms=0", headers)
  end
  local body = string.format(
    '{"event_type":"conversation_started","timestamp":"2026-11-30T10:00:00Z","event_id":"nul-%d","data":{"conversation_id":"a\\u0000b"}}',
    counter)
  return wrk.format("POST", "/v1/sessions/nul-" .. (counter % 4) .. "/events", headers, body)
end
