-- Shared by the budget scripts (prepended to each).
-- An account is a hash {spent, reserved, h:<reservation id> = amount held};
-- beside it a sorted set <reservation id> -> hold expiry (Unix ms). Holds
-- whose expiry passed (their instance died before settling) are released
-- before anything reads the account.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function prune(acct, holds)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, rid in ipairs(expired) do
    local amt = redis.call('HGET', acct, 'h:' .. rid)
    if amt then
      redis.call('HINCRBY', acct, 'reserved', -tonumber(amt))
      redis.call('HDEL', acct, 'h:' .. rid)
    end
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  end
end

local function num(v)
  if not v then return 0 end
  return tonumber(v)
end

-- keep sets a key's expiry to max(until_ms, now + floor_ms); until_ms 0
-- means the account has no window and lives forever.
local function keep(key, until_ms, floor_ms)
  if until_ms <= 0 then
    return
  end
  if until_ms < now + floor_ms then
    until_ms = now + floor_ms
  end
  redis.call('PEXPIREAT', key, until_ms)
end
