-- Claims one coupon of a template: the whole first-come-first-served decision in one atomic step.
-- Every check runs before the first write, because a Lua error does not undo earlier writes.
-- The settings in force (window, paused, stock, per-user limit, validity) are read from the state
-- hash, where a change (change-settings-2.lua) puts them, so every process obeys a change at its
-- next claim; the window passed in is used only while the hash holds no settings yet.
-- A claim sent again under its Idempotency-Key gets its first recorded outcome before anything
-- else. The window is checked against Redis' own clock (clock skew between API hosts does not
-- matter): a claim outside it writes nothing. Then the pause. Mirrors claimRefusal() in
-- claim-rules.ts (the in-process gate), except that a user whose holdings are not loaded yet is
-- told SOLD_OUT once the stock is gone (no load for a sold-out stampede).
--
-- KEYS[1]  stampede:{tpl:<id>}:state   hash: total (-1 = unlimited), limit, issued (coupons given so
--                                       far), slot (last slot number given), expires (epoch ms: when
--                                       this state expires, and the users hash with it), and the
--                                       settings: paused (0/1), starts, ends (epoch ms), vtype (A|R),
--                                       va, vb (A: validFrom, validUntil epoch ms; R: duration ms),
--                                       ver (settings version), fresh (1: the template had no
--                                       coupon when the event was opened); see load-template-2.lua,
--                                       change-settings-2.lua
-- KEYS[2]  stampede:{tpl:<id>}:users   hash: userId -> the user's coupon ids, separated by one space
--                                       ("" when loaded holding none; absent: not loaded yet)
-- KEYS[3]  stampede:{tpl:<id>}:claims  hash: couponId -> "slot seq issuedAtMs userId[ validFromMs
--                                       validUntilMs]", until persisted
-- KEYS[4]  stampede:{tpl:<id>}:stream  stream the persister reads (fields c, u, s, q, t[, f, v])
-- KEYS[5]  stampede:{tpl:<id>}:idem    hash: Idempotency-Key -> the first outcome of a claim sent with
--                                       it: "i couponId slot seq issuedAtMs issued[ validFrom
--                                       validUntil] userId" or "r code userId"; in the event's slot, so
--                                       it is replicated and fails over together with the claim
-- ARGV[1]  coupon id: a canonical UUID (36 characters) made by the server
-- ARGV[2]  user id: printable ASCII without spaces
-- ARGV[3]  claim window start, epoch ms (used while the state holds no window)
-- ARGV[4]  claim window end, epoch ms (idem)
-- ARGV[5]  the claim's Idempotency-Key, "" for none
-- ARGV[6]  optional, on a retry after -6 (or after opening the event): the user's coupon ids read
--          from PostgreSQL, separated by one space ("" for none). Used only while the users hash
--          lacks the user: once there, Redis is the truth (claims since the read may be there).
--          Exact because nothing but the gate writes into an opened event. In a fresh event (no
--          coupon when it was opened) a user absent from the hash holds none: no -6, nothing read.
-- returns  {slot, seq, issuedAtMs, issued, couponId, validFrom, validUntil, limit, ver} when a coupon
--          is issued (the coupon's window, epoch ms, when the state holds a validity, else "" and "";
--          limit: the per-user limit in force, so a caller knows the user's next claim is refused;
--          ver: the settings version that limit belongs to, 0 when the state has none),
--          {slot, seq, issuedAtMs, issued, couponId[, validFrom, validUntil]} on a replay of an
--          Idempotency-Key (couponId the first one), otherwise {code} with -1 event not opened, -2 window
--          not open yet, -3 window closed, -4 per-user limit reached, -5 sold out, -6 user's
--          holdings not loaded, -7 paused, -8 Idempotency-Key used before for another user
--          (ClaimRefusal in claim-gate.ts). A key's recorded outcome is answered again, whatever
--          the window, pause and stock say now; window and pause refusals are not recorded.
-- publishes "s <KEYS[1]> <ver>" on stampede:claims:refusal-flags when it issues the event's last
--          coupon, so every API process refuses the event's claims without asking
--          (refusal-flag-subscriber.ts)
local idem = ARGV[5]
if idem ~= '' then
  local first = redis.call('HGET', KEYS[5], idem)
  if first then
    local f = {}
    for part in string.gmatch(first, '%S+') do f[#f + 1] = part end
    if f[#f] ~= ARGV[2] then return {-8} end
    if f[1] == 'i' then
      if #f == 9 then return {tonumber(f[3]), tonumber(f[4]), tonumber(f[5]), tonumber(f[6]), f[2], f[7], f[8]} end
      return {tonumber(f[3]), tonumber(f[4]), tonumber(f[5]), tonumber(f[6]), f[2]}
    end
    return {tonumber(f[2])}
  end
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 'total', 'limit', 'issued', 'expires', 'paused', 'starts', 'ends', 'vtype', 'va', 'vb', 'fresh', 'ver')
if now < tonumber(state[6] or ARGV[3]) then return {-2} end
if now >= tonumber(state[7] or ARGV[4]) then return {-3} end
if state[5] == '1' then return {-7} end
if not state[3] then return {-1} end
local total = tonumber(state[1])
local soldOut = total >= 0 and tonumber(state[3]) >= total
-- Outcomes under an Idempotency-Key are kept as long as the event's state.
local function remember(outcome)
  if idem == '' then return end
  redis.call('HSET', KEYS[5], idem, outcome .. ' ' .. ARGV[2])
  if state[4] then redis.call('PEXPIREAT', KEYS[5], state[4]) end
end

local owned = redis.call('HGET', KEYS[2], ARGV[2])
local loading = false
if not owned then
  if soldOut then
    remember('r -5')
    return {-5}
  end
  if ARGV[6] then
    owned = ARGV[6]
  elseif state[11] == '1' then
    owned = ''
  else
    return {-6}
  end
  loading = true
end
-- The users hash expires with the state (state loaded by an older gate has no expiry field).
local function expireUsers()
  if state[4] then redis.call('PEXPIREAT', KEYS[2], state[4]) end
end
local held = 0
if owned ~= '' then held = (string.len(owned) + 1) / 37 end
if held >= tonumber(state[2]) then
  -- A user loaded by this call is kept even when refused: the next claim reads nothing.
  if loading then
    redis.call('HSET', KEYS[2], ARGV[2], owned)
    expireUsers()
  end
  remember('r -4')
  return {-4}
end
if soldOut then
  remember('r -5')
  return {-5}
end

local issued = redis.call('HINCRBY', KEYS[1], 'issued', 1)
if total >= 0 and issued >= total then
  redis.call('PUBLISH', 'stampede:claims:refusal-flags', 's ' .. KEYS[1] .. ' ' .. (redis.call('HGET', KEYS[1], 'ver') or '0'))
end
local slot = redis.call('HINCRBY', KEYS[1], 'slot', 1)
local seq = held + 1
if held > 0 then
  redis.call('HSET', KEYS[2], ARGV[2], owned .. ' ' .. ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
end
if loading then expireUsers() end
-- Absolute bounds stay strings (up to year 9999: more digits than Lua prints exactly).
if state[8] then
  local validFrom, validUntil = state[9], state[10]
  if state[8] == 'R' then
    validFrom = tostring(now)
    validUntil = tostring(now + tonumber(state[9]))
  end
  redis.call('HSET', KEYS[3], ARGV[1], slot .. ' ' .. seq .. ' ' .. now .. ' ' .. ARGV[2] .. ' ' .. validFrom .. ' ' .. validUntil)
  redis.call('XADD', KEYS[4], '*', 'c', ARGV[1], 'u', ARGV[2], 's', slot, 'q', seq, 't', now, 'f', validFrom, 'v', validUntil)
  remember('i ' .. ARGV[1] .. ' ' .. slot .. ' ' .. seq .. ' ' .. now .. ' ' .. issued .. ' ' .. validFrom .. ' ' .. validUntil)
  return {slot, seq, now, issued, ARGV[1], validFrom, validUntil, tonumber(state[2]), tonumber(state[12] or '0')}
end
redis.call('HSET', KEYS[3], ARGV[1], slot .. ' ' .. seq .. ' ' .. now .. ' ' .. ARGV[2])
redis.call('XADD', KEYS[4], '*', 'c', ARGV[1], 'u', ARGV[2], 's', slot, 'q', seq, 't', now)
remember('i ' .. ARGV[1] .. ' ' .. slot .. ' ' .. seq .. ' ' .. now .. ' ' .. issued)
return {slot, seq, now, issued, ARGV[1], '', '', tonumber(state[2]), tonumber(state[12] or '0')}
