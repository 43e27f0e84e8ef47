-- Cache-aside write of one API key's principal, unless the key is revoked.
-- KEYS[1]  stampede:apikey:<sha256 hex>
-- ARGV[1]  the principal as JSON, or "revoked"
-- ARGV[2]  time to live in seconds
-- returns  1 written, 0 refused (a revocation tombstone is there and stays)
-- A look-up reads PostgreSQL before a concurrent revocation commits and writes here after the
-- revocation's tombstone: checking and writing in one script keeps the tombstone.
if redis.call('GET', KEYS[1]) == 'revoked' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
