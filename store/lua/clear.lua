-- clear.lua: KEYS[1] the owner's hash. After the prelude's six ARGV: its
-- scope, user and tab; the origin's user, tab, API flag and page load.
-- Answers how many keys there were and the clear's version.
local n = redis.call('HLEN', KEYS[1])
if n == 0 then return {0, '0'} end
redis.call('DEL', KEYS[1])
local _, tab = origin_of(ARGV[10], ARGV[11], ARGV[12])
local version = next_version()
publish(ARGV[7], ARGV[8], ARGV[9], '', 'clear', version, {ARGV[10], tab, ARGV[12], ARGV[13]})
return {n, version}
