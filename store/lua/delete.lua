-- delete.lua: KEYS[1] the owner's hash. After the prelude's six ARGV: its
-- scope, user, tab, the key and the origin. Answers 1, or 0 without the key.
if redis.call('HDEL', KEYS[1], ARGV[10]) == 0 then return 0 end
publish(ARGV[7], ARGV[8], ARGV[9], ARGV[10], 'delete', next_version(), ARGV[11])
return 1
