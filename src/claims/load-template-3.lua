-- Loads a template's claim state, only if no live state exists: two loaders racing, or a loader
-- that read PostgreSQL before claims started flowing, never overwrite a live counter.
-- The users' holdings were written beforehand into a staging hash (it may be large, so it is sent
-- in chunks); this script adopts it whole or discards it.
--
-- KEYS[1]  stampede:{tpl:<id>}:state          hash written here (see claim-4.lua)
-- KEYS[2]  stampede:{tpl:<id>}:users          replaced by the staging hash
-- KEYS[3]  stampede:{tpl:<id>}:staging:<uuid> userId -> coupon ids (absent when nobody holds one)
-- ARGV[1]  total quantity (-1 = unlimited)
-- ARGV[2]  per-user limit
-- ARGV[3]  claim window start, epoch ms
-- ARGV[4]  claim window end, epoch ms
-- ARGV[5]  issued count in PostgreSQL
-- ARGV[6]  highest slot in PostgreSQL (0 if none)
-- returns  1 when loaded, 0 when live state already existed (then nothing changes but the staging
--          hash being dropped)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'limit', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4],
  'issued', ARGV[5], 'slot', ARGV[6])
return 1
