-- Report an account's spend and live holds.
-- KEYS[1] account hash, KEYS[2] its holds set
-- Returns {spent, reserved}.
prune(KEYS[1], KEYS[2])
return {num(redis.call('HGET', KEYS[1], 'spent')), num(redis.call('HGET', KEYS[1], 'reserved'))}
