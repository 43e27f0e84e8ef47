-- One process settles one token bucket for one window (src/infra/shared-buckets.ts): it reports
-- the tokens it admitted without a lease and asks for a lease of more. Grants never take the
-- window's total past the limit. One grant is at most the larger of what is left of this
-- process's even share of the limit and an even share of what remains, shared between the
-- processes that settled this key in this window or the one before: a flood on every process is
-- split evenly at once, and a key busy on one process alone still gets all of it in a few settles.
-- KEYS[1]  the bucket's hash for the window settled (stampede:bucket:{<scope>:<key>}:<window>):
--          `granted` = tokens granted or reported in the window; `p:<process>` = the same, per process
-- KEYS[2]  the same bucket's hash for the window before (only read, for the count of processes)
-- ARGV[1]  limit: tokens per window
-- ARGV[2]  tokens this process admitted without a lease since its last report (counted as granted)
-- ARGV[3]  tokens this process asks for (0: report only)
-- ARGV[4]  this process's id
-- ARGV[5]  lifetime of the hash in milliseconds (a few windows)
-- returns  {tokens granted now, tokens granted in the window so far (this grant included)}
local limit = tonumber(ARGV[1])
local own_field = 'p:' .. ARGV[4]
local own = redis.call('HINCRBY', KEYS[1], own_field, ARGV[2])
local granted = redis.call('HINCRBY', KEYS[1], 'granted', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local processes = math.max(redis.call('HLEN', KEYS[1]) - 1, redis.call('HLEN', KEYS[2]) - 1, 1)
local remaining = limit - granted
local grant = 0
if remaining > 0 then
  local share = math.max(math.ceil(limit / processes) - own, math.ceil(remaining / processes))
  grant = math.min(tonumber(ARGV[3]), remaining, share)
end
if grant > 0 then
  granted = redis.call('HINCRBY', KEYS[1], 'granted', grant)
  redis.call('HINCRBY', KEYS[1], own_field, grant)
end
return {grant, granted}
