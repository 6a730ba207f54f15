-- clear.lua: KEYS[1] the owner's hash. After the prelude's six ARGV: its
-- scope, user, tab and the origin. Answers how many keys there were.
local n = redis.call('HLEN', KEYS[1])
if n == 0 then return 0 end
redis.call('DEL', KEYS[1])
publish(ARGV[7], ARGV[8], ARGV[9], '', 'clear', next_version(), ARGV[10])
return n
