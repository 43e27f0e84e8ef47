-- Puts a template's claim settings in force for the next claim (claim-settings.ts), atomically with
-- claims: the stock check against the coupons issued and the write are one step. Written whether
-- or not the event is opened yet (a settings-only hash, no 'issued': claims still open the event,
-- and load-template-2.lua keeps these settings). Settings of a higher version already in force are
-- kept (a change is applied in two steps, and an opening may read PostgreSQL before a change).
--
-- KEYS[1]  stampede:{tpl:<id>}:state   hash (see claim-5.lua)
-- KEYS[2]  stampede:{tpl:<id>}:users   its expiry follows the state's
-- ARGV[1]  total (-1 = unlimited)
-- ARGV[2]  per-user limit
-- ARGV[3]  paused: 1 or 0
-- ARGV[4]  window start, epoch ms
-- ARGV[5]  window end, epoch ms
-- ARGV[6]  validity type: A (absolute) or R (relative)
-- ARGV[7]  A: validFrom epoch ms; R: the duration in ms
-- ARGV[8]  A: validUntil epoch ms; R: 0
-- ARGV[9]  settings version
-- ARGV[10] when the state expires, epoch ms (window end plus the retention)
-- returns  {1} applied, {0} a newer version is in force (nothing changed), {-1, issued} refused:
--          the total is below the coupons issued (nothing changed)
-- publishes, when applied, "c <KEYS[1]> <version> <refusal>" on stampede:claims:refusal-flags:
--          every API process drops what it knew of the event's refusals (refusal-flags.ts) and
--          refuses from then on what the settings now refuse every claim: -3 closed (by Redis'
--          clock), -7 paused, -5 sold out, 0 nothing
local state = redis.call('HMGET', KEYS[1], 'ver', 'issued')
if state[1] and tonumber(state[1]) > tonumber(ARGV[9]) then return {0} end
local total = tonumber(ARGV[1])
if state[2] and total >= 0 and tonumber(state[2]) > total then return {-1, tonumber(state[2])} end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'limit', ARGV[2], 'paused', ARGV[3], 'starts', ARGV[4], 'ends', ARGV[5],
  'vtype', ARGV[6], 'va', ARGV[7], 'vb', ARGV[8], 'ver', ARGV[9], 'expires', ARGV[10])
redis.call('PEXPIREAT', KEYS[1], ARGV[10])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], ARGV[10]) end
-- The same order as claim-5.lua: window, pause, stock (not open yet refuses nothing for long).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local refusal = 0
if now >= tonumber(ARGV[5]) then
  refusal = -3
elseif now >= tonumber(ARGV[4]) then
  if ARGV[3] == '1' then
    refusal = -7
  elseif state[2] and total >= 0 and tonumber(state[2]) >= total then
    refusal = -5
  end
end
redis.call('PUBLISH', 'stampede:claims:refusal-flags', 'c ' .. KEYS[1] .. ' ' .. ARGV[9] .. ' ' .. refusal)
return {1}
