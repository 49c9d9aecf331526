-- Publish a revocation and keep it in a capped log for subscribers that
-- were reconnecting when it was published.
-- KEYS[1] sequence, KEYS[2] epoch, KEYS[3] log (list, newest first)
-- ARGV[1] channel, ARGV[2] revocation JSON, ARGV[3] a fresh random epoch
-- (used only if Redis has none: it changes when Redis loses its data),
-- ARGV[4] log capacity
-- Returns the number of subscribers that received it.
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local epoch = redis.call('GET', KEYS[2])
local seq = redis.call('INCR', KEYS[1])
local msg = epoch .. ':' .. seq .. ':' .. ARGV[2]
redis.call('LPUSH', KEYS[3], msg)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return redis.call('PUBLISH', ARGV[1], msg)
