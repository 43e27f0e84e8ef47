-- One process settles one token bucket for one window (src/infra/shared-buckets.ts): it reports
-- the tokens it admitted without a lease and asks for a lease of more. Every process that settled
-- the key in this window or the one before has a fair share, ceil(limit / their number), which it
-- may admit without asking (its floor); what it has not yet taken of it stays reserved for it. A
-- grant is at most what the limit leaves after the tokens granted or reported and the others'
-- reserved floors, so granted + reserved never exceeds the limit once every process admitting
-- has settled, a flood on every process is split evenly, and a key busy on one process alone gets
-- the whole limit there.
-- KEYS[1]  the bucket's hash for the window settled (stampede:bucket:{<scope>:<key>}:<window>):
--          `granted` = tokens granted or reported in the window; `p:<process>` = the same, per process
-- KEYS[2]  the same bucket's hash for the window before (only read: which processes settled then)
-- ARGV[1]  limit: tokens per window
-- ARGV[2]  tokens this process admitted without a lease since its last report (counted as granted)
-- ARGV[3]  tokens this process asks for (0: report only)
-- ARGV[4]  this process's id
-- ARGV[5]  lifetime of the hash in milliseconds (a few windows)
-- returns  {tokens granted now, the fair share of each process}
local limit = tonumber(ARGV[1])
local self = 'p:' .. ARGV[4]
redis.call('HINCRBY', KEYS[1], self, ARGV[2])
local granted = redis.call('HINCRBY', KEYS[1], 'granted', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local own = {}
local processes = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] ~= 'granted' then
    own[fields[i]] = tonumber(fields[i + 1])
    processes = processes + 1
  end
end
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if field ~= 'granted' and own[field] == nil then
    own[field] = 0
    processes = processes + 1
  end
end
local fair = math.ceil(limit / processes)
local reserved = 0
for field, taken in pairs(own) do
  if field ~= self then reserved = reserved + math.max(0, fair - taken) end
end
local grant = math.max(0, math.min(tonumber(ARGV[3]), limit - granted - reserved))
if grant > 0 then
  redis.call('HINCRBY', KEYS[1], 'granted', grant)
  redis.call('HINCRBY', KEYS[1], self, grant)
end
return {grant, fair}
