-- Opens a template's claim event in Redis: its counters (no holder: each user's coupons are read
-- on the user's first claim and handed to claim-5.lua) and its settings, and only if no live state
-- exists, so two loaders racing, or a loader that read PostgreSQL before claims started flowing,
-- never overwrite a live counter. Settings already in the hash with a version at least as high
-- (written by a change, change-settings-2.lua, after this loader read PostgreSQL) are kept. The
-- state expires after the event (window end plus the hour reconcile still watches it).
--
-- KEYS[1]  stampede:{tpl:<id>}:state   hash written here (see claim-5.lua)
-- KEYS[2]  stampede:{tpl:<id>}:users   dropped: holdings left from a lost state are read afresh
-- ARGV[1]  issued count in PostgreSQL
-- ARGV[2]  highest slot in PostgreSQL (0 if none)
-- ARGV[3..12] the settings read with them: total (-1 = unlimited), limit, paused (0/1), starts,
--          ends, vtype, va, vb, ver, expires (see change-settings-2.lua)
-- ARGV[13] "1" when the template had no coupon at all in PostgreSQL (a fresh event: every user not
--          in the users hash holds none, so claim-5.lua reads no holdings), "0" otherwise
-- returns  1 when loaded, 0 when live state already existed (then nothing changes)
if redis.call('HEXISTS', KEYS[1], 'issued') == 1 then return 0 end
redis.call('DEL', KEYS[2])
local ver = redis.call('HGET', KEYS[1], 'ver')
if not ver or tonumber(ver) < tonumber(ARGV[11]) then
  redis.call('HSET', KEYS[1], 'total', ARGV[3], 'limit', ARGV[4], 'paused', ARGV[5], 'starts', ARGV[6], 'ends', ARGV[7],
    'vtype', ARGV[8], 'va', ARGV[9], 'vb', ARGV[10], 'ver', ARGV[11], 'expires', ARGV[12])
  redis.call('PEXPIREAT', KEYS[1], ARGV[12])
end
redis.call('HSET', KEYS[1], 'issued', ARGV[1], 'slot', ARGV[2], 'fresh', ARGV[13])
return 1
