-- List a session's open reservations; forget the settled and lapsed ones.
-- KEYS[1]    the session's reservation list
-- KEYS[1+i]  reservation record (hash), for i = 1..n
-- ARGV[i]    its reservation id
-- Returns {id, amount, accounts JSON, ...} for each reservation whose hold
-- has not expired, in list (grant) order.
local out = {}
for i = 1, #ARGV do
  local rec = redis.call('HMGET', KEYS[1 + i], 'amount', 'accounts', 'expires')
  if rec[1] and tonumber(rec[3] or 0) > now then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = rec[1]
    out[#out + 1] = rec[2]
  else
    redis.call('LREM', KEYS[1], 0, ARGV[i])
  end
end
return out
