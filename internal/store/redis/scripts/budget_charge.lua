-- Add spend without a reservation.
-- KEYS[i]  account hash, for i = 1..n
-- ARGV[1] amount, ARGV[2] floor ttl ms, ARGV[2+i] expire-at ms (0 = never)
local amount, floor_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'spent', amount)
  keep(KEYS[i], tonumber(ARGV[2 + i]), floor_ms)
end
return 1
