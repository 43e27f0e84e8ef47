-- The claims of one user on one template that are not yet persisted to PostgreSQL (read-only).
--
-- KEYS[1]  stampede:{tpl:<id>}:users   hash: userId -> coupon ids (see claim-5.lua)
-- KEYS[2]  stampede:{tpl:<id>}:claims  hash: couponId -> "slot seq issuedAtMs userId"
-- ARGV[1]  user id
-- returns  flat array {couponId, record, couponId, record, ...}; empty when nothing is pending
local owned = redis.call('HGET', KEYS[1], ARGV[1])
if not owned then return {} end
local pending = {}
for couponId in string.gmatch(owned, '%S+') do
  local record = redis.call('HGET', KEYS[2], couponId)
  if record then
    pending[#pending + 1] = couponId
    pending[#pending + 1] = record
  end
end
return pending
