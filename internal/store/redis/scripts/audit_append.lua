-- Append one audit entry with the next sequence number.
-- KEYS[1] sequence counter, KEYS[2] log (sorted set scored by sequence),
-- KEYS[3..] per-session / per-user indexes holding the same members
-- ARGV[1] the entry's JSON without its seq
-- Returns the sequence number.
local seq = redis.call('INCR', KEYS[1])
local member = seq .. '|' .. ARGV[1]
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], seq, member)
end
return seq
