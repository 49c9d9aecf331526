-- Reserve between min and want on every account, atomically.
-- KEYS[1]        reservation record (hash)
-- KEYS[2]        the owning session's reservation list (untouched without a session)
-- KEYS[1+2i], KEYS[2+2i]  account hash and its holds set, for i = 1..n
-- ARGV[1] id, ARGV[2] want, ARGV[3] min, ARGV[4] hold ttl ms,
-- ARGV[5] record ttl ms, ARGV[6] accounts JSON (stored in the record),
-- ARGV[7] session id ('' = none),
-- then per account: ARGV[6+2i] limit (0 = unlimited), ARGV[7+2i] expire-at ms (0 = never)
-- Returns {granted, remaining}; remaining is -1 when no account has a limit.
local id = ARGV[1]
local want, min = tonumber(ARGV[2]), tonumber(ARGV[3])
local hold_ttl, record_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local session = ARGV[7]
local n = (#KEYS - 2) / 2

local function tightest()
  local avail = nil
  for i = 1, n do
    local acct = KEYS[1 + 2 * i]
    local limit = tonumber(ARGV[6 + 2 * i])
    if limit > 0 then
      local a = limit - num(redis.call('HGET', acct, 'spent')) - num(redis.call('HGET', acct, 'reserved'))
      if avail == nil or a < avail then
        avail = a
      end
    end
  end
  return avail
end

for i = 1, n do
  prune(KEYS[1 + 2 * i], KEYS[2 + 2 * i])
end

-- A retried Reserve of a live reservation answers what it got the first time.
local prev = redis.call('HGET', KEYS[1], 'amount')
if prev then
  local avail = tightest()
  return {tonumber(prev), avail == nil and -1 or math.max(avail, 0)}
end

local avail = tightest()
local g = want
if avail ~= nil and avail < g then
  g = avail
end
if g <= 0 or g < min then
  return {0, avail == nil and -1 or math.max(avail, 0)}
end

local expires = now + hold_ttl
for i = 1, n do
  local acct, holds = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  redis.call('HINCRBY', acct, 'reserved', g)
  redis.call('HSET', acct, 'h:' .. id, g)
  redis.call('ZADD', holds, expires, id)
  local until_ms = tonumber(ARGV[7 + 2 * i])
  keep(acct, until_ms, record_ttl)
  keep(holds, until_ms, record_ttl)
end
redis.call('HSET', KEYS[1], 'amount', g, 'accounts', ARGV[6], 'session', session, 'expires', expires)
redis.call('PEXPIRE', KEYS[1], record_ttl)
if session ~= '' then
  -- A lapsed record of the same id may still be listed: list the id once.
  redis.call('LREM', KEYS[2], 0, id)
  redis.call('RPUSH', KEYS[2], id)
  redis.call('PEXPIRE', KEYS[2], record_ttl)
end
return {g, avail == nil and -1 or (avail - g)}
