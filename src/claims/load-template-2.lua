-- Opens a template's claim event in Redis: its counters only (no holder: each user's coupons are
-- read on the user's first claim and handed to claim-4.lua), and only if no live state exists, so two loaders racing, or a loader
-- that read PostgreSQL before claims started flowing, never overwrite a live counter. The state
-- expires after the event (window end plus the hour reconcile still watches it).
--
-- KEYS[1]  stampede:{tpl:<id>}:state   hash written here (see claim-4.lua)
-- KEYS[2]  stampede:{tpl:<id>}:users   dropped: holdings left from a lost state are read afresh
-- ARGV[1]  total quantity (-1 = unlimited)
-- ARGV[2]  per-user limit
-- ARGV[3]  issued count in PostgreSQL
-- ARGV[4]  highest slot in PostgreSQL (0 if none)
-- ARGV[5]  when the state expires, epoch ms
-- returns  1 when loaded, 0 when live state already existed (then nothing changes)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'limit', ARGV[2], 'issued', ARGV[3], 'slot', ARGV[4], 'expires', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
