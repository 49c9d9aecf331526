-- GCRA rate limit on one key, with the Redis server's clock so every
-- gateway instance shares one notion of time.
-- KEYS[1]  theoretical arrival time (TAT), integer microseconds
-- ARGV[1]  emission interval in microseconds (period/rate, rounded up)
-- ARGV[2]  burst (>= 1)
-- ARGV[3]  cost (>= 1)
-- ARGV[4]  optional: the time in Unix microseconds, replacing the server's
--          clock (only tests set it, to check the arithmetic exactly)
-- Returns {allowed (0|1), remaining, retry_after_us, reset_after_us}.
local now
if ARGV[4] then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end

local new_tat = tat + interval * cost
local diff = now - (new_tat - interval * burst)
if diff < 0 then
  return {0, 0, -diff, tat - now}
end

local reset = new_tat - now
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(reset / 1000) + 1)
return {1, math.floor(diff / interval), 0, reset}
