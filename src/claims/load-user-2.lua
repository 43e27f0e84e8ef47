-- Loads one user's holdings of an opened event, read from PostgreSQL by the gate on the user's
-- first claim (claim-4.lua answered -6). Set-if-absent: once the user is in the hash, Redis is the
-- truth (claims since the read may already be there, persisted or not), so a late loader changes
-- nothing. Exact because nothing but this gate writes into an opened event.
--
-- KEYS[1]  stampede:{tpl:<id>}:state   must exist (else the event is to be opened again)
-- KEYS[2]  stampede:{tpl:<id>}:users   hash: userId -> coupon ids (see claim-4.lua)
-- ARGV[1]  user id
-- ARGV[2]  the user's coupon ids in seq order, separated by one space; "" when none
-- ARGV[3]  when the users hash expires, epoch ms (the state's expiry)
-- returns  1 when loaded, 0 when the user was there already, -1 when the event is not opened
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
return 1
