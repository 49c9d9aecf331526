-- Release a reservation and charge what was actually spent.
-- KEYS[1]        reservation record (hash)
-- KEYS[2]        the owning session's reservation list (absent without a session)
-- KEYS[1+2i], KEYS[2+2i]  account hash and its holds set, for i = 1..n
-- ARGV[1] id, ARGV[2] actual, ARGV[3] floor ttl ms,
-- then per account: ARGV[3+i] expire-at ms (0 = never)
-- Returns 1 when settled, 0 when the reservation was unknown or settled.
local id, actual, floor_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = (#KEYS - 2) / 2
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 1, n do
  local acct, holds = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  prune(acct, holds)
  local amt = redis.call('HGET', acct, 'h:' .. id)
  if amt then
    redis.call('HINCRBY', acct, 'reserved', -tonumber(amt))
    redis.call('HDEL', acct, 'h:' .. id)
  end
  redis.call('ZREM', holds, id)
  if actual > 0 then
    redis.call('HINCRBY', acct, 'spent', actual)
  end
  keep(acct, tonumber(ARGV[3 + i]), floor_ms)
end
redis.call('LREM', KEYS[2], 0, id)
redis.call('DEL', KEYS[1])
return 1
