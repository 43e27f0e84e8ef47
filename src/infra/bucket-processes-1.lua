-- Heartbeat of a process that settles token buckets (src/infra/shared-buckets.ts): how many such
-- processes are alive, so each admits its share of a limit before its first settle. Redis's clock
-- is the one compared, so hosts' clocks need not agree.
-- KEYS[1]  sorted set of processes by last heartbeat in ms (stampede:bucket-processes)
-- ARGV[1]  this process's id
-- ARGV[2]  how long a process counts after its last heartbeat, in milliseconds
-- returns  the number of processes alive (this one included)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
