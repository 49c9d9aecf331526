-- Record the latest user revocation time (Unix ns), never moving it back.
-- KEYS[1] user revoked-at key; ARGV[1] time ns; ARGV[2] ttl ms
local cur = redis.call('GET', KEYS[1])
if cur and string.len(cur) > string.len(ARGV[1]) or (cur and string.len(cur) == string.len(ARGV[1]) and cur >= ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
