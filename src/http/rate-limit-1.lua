-- Fixed-window request counter for one API key.
-- KEYS[1]  counter key (stampede:ratelimit:<keyId>)
-- ARGV[1]  window length in milliseconds
-- returns  {requests in the current window, milliseconds until the window resets}
local current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {current, tonumber(ARGV[1])}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- a counter without expiry (should not happen) would block the key forever
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}
