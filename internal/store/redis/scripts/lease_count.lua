-- Count unexpired holders.
-- KEYS[1]  sorted set holder -> expiry (Unix ms, Redis clock)
-- ARGV[1]  optional: the time in Unix microseconds (tests only)
local now
if ARGV[1] then
  now = math.floor(tonumber(ARGV[1]) / 1000)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
