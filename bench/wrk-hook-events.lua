-- wrk script: single Claude Code hook events, each unique, spread over 1,000 sessions. Unlike
-- wrk-events.lua these carry what search indexes (a tool, its command and description, a
-- prompt, a reply), so a run shows what indexing costs ingest.
-- Usage: wrk -t2 -c256 -d10s -s bench/wrk-hook-events.lua http://127.0.0.1:8080
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  counter = 0
end

local kinds = {
  '{"hook_event_name":"PreToolUse","cwd":"/home/dev/acme","tool_name":"Bash","tool_input":{"command":"cargo test -p orchestrator --lib search_%d","description":"Run the search tests"}}',
  '{"hook_event_name":"PostToolUse","cwd":"/home/dev/acme","tool_name":"Edit","tool_input":{"file_path":"/home/dev/acme/src/domain/search_%d.rs","old_string":"a","new_string":"b"},"tool_response":{"filePath":"/home/dev/acme/src/domain/search.rs"}}',
  '{"hook_event_name":"UserPromptSubmit","cwd":"/home/dev/acme","prompt":"Fix the flaky test in the session actor, then run clippy %d"}',
  '{"hook_event_name":"Stop","cwd":"/home/dev/acme","last_assistant_message":"Done: the test waits for the group in flight before reading the snapshot %d."}',
}
local types = {"PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop"}

request = function()
  counter = counter + 1
  local session = "bench-" .. (counter % 1000)
  local k = (counter % 4) + 1
  local data = string.format(kinds[k], counter)
  local body = string.format(
    '{"event_type":"%s","timestamp":"2026-11-22T10:00:00Z","event_id":"t%s-%d","data":%s}',
    types[k], tid, counter, data)
  return wrk.format("POST", "/v1/sessions/" .. session .. "/events",
    {["Content-Type"] = "application/json"}, body)
end
