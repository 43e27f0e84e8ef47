-- A wrk script (not a Redis script): the claim load of bench:claim from Debian's `wrk`, a load
-- generator in C that costs the server's two cores far less CPU per request than a Node one.
-- Usage (run by wrk-generator.ts): wrk -t T -c C -d CAP --timeout 60s -s wrk-claims.lua URL
--   host=H path=P key=API_KEY users=U clicks=K prefix=PFX threads=T keep=1|0 out=DIR hold=MS
-- Connections first (as the Node generator opens them before it starts): no claim leaves before
-- `hold` ms after the thread's first connection, so the server has accepted every connection
-- before the load starts. (libuv accepts one connection per event-loop turn; a connection opened
-- into a server already busy with the others waits seconds to be accepted, and its first request
-- with it: that is connection set-up under load, not claim handling. See docs/decisions/180.)
-- Each thread takes an equal share of the users (ids PFX..n); a user's K claims go back to back,
-- as with the Node generator: the next one only once the previous is answered (it is queued by
-- response() and sent by the thread's next request(), which wrk calls for the connection that just
-- got that answer; no pipelining). A connection with nothing left to send idles (an empty
-- write) until the thread stops. It counts every answer by status and
-- error code, keeps "couponId<TAB>userId" of every 201 (keep=1) in DIR/acked-<thread>.tsv, and
-- stops once its share is answered, printing "wrk-thread-done <id>" (the caller then ends wrk).
-- Latency per request: each request carries X-Request-Id "<user>-<click>", which the servers echo,
-- so an answer is matched to its send time; DIR/latency-<thread>.tsv gets "sentAt<TAB>ms<TAB>
-- outcome" per answer (wrk's own histogram is corrected for coordinated omission before done()
-- sees it, which inflates its percentiles: kept only as wrkCorrectedP99Us). Times are epoch ms
-- (CLOCK_REALTIME through LuaJIT's FFI). done() prints one line "wrk-result <json>".
-- Progress: "wrk-progress <id> <answered>".
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(0, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- Main state: every thread, to gather their counts in done().
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Thread state from here (init, request, response).
function init(args)
  local opts = {}
  for i = 1, #args do
    local name, value = args[i]:match("^([%w_]+)=(.*)$")
    if name then opts[name] = value end
  end
  local users, nthreads = tonumber(opts.users), tonumber(opts.threads)
  clicks = tonumber(opts.clicks)
  prefix = opts.prefix
  keep = opts.keep == "1"
  out = opts.out
  hold_ms = tonumber(opts.hold or "0")
  next_user = math.floor(users * id / nthreads)
  last_user = math.floor(users * (id + 1) / nthreads)
  total = (last_user - next_user) * clicks
  -- Users whose next click waits to be sent (FIFO).
  ready_user, ready_click, ready_head, ready_tail = {}, {}, 1, 1
  sent, answered = 0, 0
  counts, samples, acked = {}, {}, {}
  started_at, finished_at, last_201_at = 0, 0, 0
  -- Per answer: send time, latency and outcome (an index into outcome_names); unmatched answers counted.
  sent_at, answer_sent, answer_ms, answer_outcome = {}, {}, {}, {}
  outcome_index, outcome_names, unmatched, matched = {}, {}, 0, 0
  path = opts.path
  head = "\r\nHost: " .. opts.host .. "\r\nContent-Type: application/json\r\n" ..
    ((opts.key or "") ~= "" and ("X-Api-Key: " .. opts.key .. "\r\n") or "") .. "Content-Length: "
  -- wrk calls request() once on the first thread to check the script before any thread runs.
  checking = id == 0
end

function request()
  if checking then
    checking = false
    return "POST " .. path .. " HTTP/1.1" .. head .. "2\r\n\r\n{}"
  end
  local user, click
  if ready_head < ready_tail then
    user, click = ready_user[ready_head], ready_click[ready_head]
    ready_user[ready_head], ready_click[ready_head] = nil, nil
    ready_head = ready_head + 1
  elseif next_user < last_user then
    user, click = next_user, 1
    next_user = next_user + 1
  else
    -- Nothing to send now: an empty write, and this connection idles until the thread stops.
    return ""
  end
  local now = now_ms()
  if sent == 0 then started_at = now end
  sent = sent + 1
  local body = '{"userId":"' .. prefix .. user .. '"}'
  local rid = user .. "-" .. click
  sent_at[rid] = now
  return "POST " .. path .. " HTTP/1.1\r\nX-Request-Id: " .. rid .. head .. #body .. "\r\n\r\n" .. body
end

-- Called before every request: holds the first ones until `hold_ms` after the first call, then 0.
function delay()
  local now = now_ms()
  if not hold_until then hold_until = now + hold_ms end
  return hold_until > now and math.ceil(hold_until - now) or 0
end

local function sample(text)
  if #samples < 5 then table.insert(samples, text:sub(1, 300)) end
end

function response(status, headers, body)
  local now = now_ms()
  answered = answered + 1
  local outcome
  if status == 201 then
    outcome = "201"
    last_201_at = now
    if keep then
      local coupon, user = body:match('"couponId":"([^"]+)".-"userId":"([^"]+)"')
      if coupon then
        acked[#acked + 1] = coupon .. "\t" .. user
      else
        outcome = "201 with a wrong body"
        sample(body)
      end
    end
  else
    outcome = status .. " " .. (body:match('"code":"([A-Z_]+)"') or "?")
    if status ~= 409 then sample(status .. ": " .. body) end
  end
  counts[outcome] = (counts[outcome] or 0) + 1
  local rid = headers["x-request-id"] or headers["X-Request-Id"]
  local at = rid and sent_at[rid]
  if at then
    sent_at[rid] = nil
    local user, click = rid:match("^(%d+)%-(%d+)$")
    click = tonumber(click)
    if click < clicks then
      ready_user[ready_tail], ready_click[ready_tail] = tonumber(user), click + 1
      ready_tail = ready_tail + 1
    end
    local index = outcome_index[outcome]
    if not index then
      index = #outcome_names + 1
      outcome_names[index] = outcome
      outcome_index[outcome] = index
    end
    matched = matched + 1
    answer_sent[matched], answer_ms[matched], answer_outcome[matched] = at, now - at, index
  else
    unmatched = unmatched + 1
  end
  if answered % 20000 == 0 then
    io.stdout:write("wrk-progress " .. id .. " " .. answered .. "\n")
    io.stdout:flush()
  end
  if answered == total then
    finished_at = now_ms()
    if keep then
      local file = assert(io.open(out .. "/acked-" .. id .. ".tsv", "w"))
      file:write(table.concat(acked, "\n"))
      file:close()
    end
    local file = assert(io.open(out .. "/latency-" .. id .. ".tsv", "w"))
    for i = 1, matched, 10000 do
      local lines = {}
      for j = i, math.min(i + 9999, matched) do
        lines[#lines + 1] = string.format("%.3f\t%.3f\t%s", answer_sent[j], answer_ms[j], outcome_names[answer_outcome[j]])
      end
      file:write(table.concat(lines, "\n"), "\n")
    end
    file:close()
    -- Flat strings: only plain values cross from a thread to the main state.
    local parts = {}
    for name, count in pairs(counts) do parts[#parts + 1] = name .. "=" .. count end
    counts_text = table.concat(parts, "\n")
    samples_text = table.concat(samples, "\n")
    io.stdout:write("wrk-thread-done " .. id .. "\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local counts, samples = {}, {}
  local started, finished, last_201, answered, unmatched = math.huge, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    for line in (thread:get("counts_text") or ""):gmatch("[^\n]+") do
      local name, count = line:match("^(.*)=(%d+)$")
      counts[name] = (counts[name] or 0) + tonumber(count)
    end
    for line in (thread:get("samples_text") or ""):gmatch("[^\n]+") do
      if #samples < 5 then table.insert(samples, line) end
    end
    local s = thread:get("started_at")
    if s and s > 0 and s < started then started = s end
    finished = math.max(finished, thread:get("finished_at") or 0)
    last_201 = math.max(last_201, thread:get("last_201_at") or 0)
    answered = answered + (thread:get("answered") or 0)
    unmatched = unmatched + (thread:get("unmatched") or 0)
  end
  local outcome_parts, sample_parts = {}, {}
  for name, count in pairs(counts) do outcome_parts[#outcome_parts + 1] = json_string(name) .. ":" .. count end
  for _, text in ipairs(samples) do sample_parts[#sample_parts + 1] = json_string(text) end
  local e = summary.errors
  io.stdout:write("wrk-result {" ..
    '"answered":' .. answered .. ',"requests":' .. summary.requests ..
    ',"startedAt":' .. string.format("%.3f", started == math.huge and 0 or started) ..
    ',"finishedAt":' .. string.format("%.3f", finished) .. ',"last201At":' .. string.format("%.3f", last_201) ..
    ',"outcomes":{' .. table.concat(outcome_parts, ",") .. '},"samples":[' .. table.concat(sample_parts, ",") .. "]" ..
    ',"unmatched":' .. unmatched .. ',"wrkCorrectedP99Us":' .. latency:percentile(99) .. ',"wrkMaxUs":' .. latency.max ..
    ',"errors":{"connect":' .. e.connect .. ',"read":' .. e.read .. ',"write":' .. e.write .. ',"timeout":' .. e.timeout .. "}}\n")
end
