-- Acquire (or renew) a concurrency slot.
-- KEYS[1]  sorted set holder -> expiry (Unix ms, Redis clock)
-- ARGV[1]  holder
-- ARGV[2]  max unexpired holders
-- ARGV[3]  ttl in ms
-- ARGV[4]  optional: the time in Unix microseconds, replacing the server's
--          clock (only tests set it)
-- Returns 1 when held, 0 when full.
local now
if ARGV[4] then
  now = math.floor(tonumber(ARGV[4]) / 1000)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now + 1)
return 1
