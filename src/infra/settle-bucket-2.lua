-- One process settles one token bucket for one window (src/infra/shared-buckets.ts): it reports
-- the tokens it admitted from its floor and asks for a lease of more. Every process that settled
-- the key in this window or the one before has a floor, ceil(limit / their number), which it
-- admits without asking; the part of it not yet reported stays reserved for it. A lease is at
-- most what the limit leaves after the tokens granted or reported and every process's reserved
-- floor, so granted + reserved never exceeds the limit: a flood on every process is served from
-- the floors, evenly, and a key busy on one process alone gets the whole limit there.
-- KEYS[1]  the bucket's hash for the window settled (stampede:bucket:{<scope>:<key>}:<window>):
--          `granted` = tokens leased or reported in the window; `f:<process>` = floor tokens it reported
-- KEYS[2]  the same bucket's hash for the window before (only read: which processes settled then)
-- ARGV[1]  limit: tokens per window
-- ARGV[2]  floor tokens this process admitted since its last report
-- ARGV[3]  tokens this process asks to lease (0: report only)
-- ARGV[4]  this process's id
-- ARGV[5]  lifetime of the hash in milliseconds (a few windows)
-- returns  {tokens leased now, the floor of each process}
local limit = tonumber(ARGV[1])
local self = 'f:' .. ARGV[4]
redis.call('HINCRBY', KEYS[1], self, ARGV[2])
local granted = redis.call('HINCRBY', KEYS[1], 'granted', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local reported = {}
local processes = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= 'granted' then
    reported[fields[i]] = tonumber(fields[i + 1])
    processes = processes + 1
  end
end
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if field ~= 'granted' and reported[field] == nil then
    reported[field] = 0
    processes = processes + 1
  end
end
local floor = math.ceil(limit / processes)
local reserved = 0
for _, used in pairs(reported) do reserved = reserved + math.max(0, floor - used) end
local grant = math.max(0, math.min(tonumber(ARGV[3]), limit - granted - reserved))
if grant > 0 then redis.call('HINCRBY', KEYS[1], 'granted', grant) end
return {grant, floor}
