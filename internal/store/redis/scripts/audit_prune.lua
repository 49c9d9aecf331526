-- Remove audit entries past the retention from the log and their indexes,
-- and move the prune cursor forward. Idempotent: an entry already removed
-- removes nothing, and the cursor never moves back, so every instance may
-- run it, at once too.
-- KEYS[1] prune cursor (the highest sequence number examined)
-- KEYS[2] log (sorted set scored by sequence)
-- KEYS[3..] per-session / per-user indexes of the entries removed
-- ARGV[1] the new cursor
-- ARGV[2..] triples: sequence number of an entry to remove, then the KEYS
--           positions of its session and user indexes (0: none)
-- Returns how many entries left the log.
local removed = 0
for i = 2, #ARGV, 3 do
  local seq = ARGV[i]
  removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[2], seq, seq)
  for j = i + 1, i + 2 do
    local k = tonumber(ARGV[j])
    if k > 0 then
      redis.call('ZREMRANGEBYSCORE', KEYS[k], seq, seq)
    end
  end
end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
end
return removed
