-- Extend a slot still held.
-- KEYS[1]  sorted set holder -> expiry (Unix ms, Redis clock)
-- ARGV[1]  holder
-- ARGV[2]  ttl in ms
-- ARGV[3]  optional: the time in Unix microseconds (tests only)
-- Returns 1 when renewed, 0 when the holder no longer holds a slot.
local now
if ARGV[3] then
  now = math.floor(tonumber(ARGV[3]) / 1000)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now + 1)
return 1
