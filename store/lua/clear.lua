-- clear.lua: KEYS[1] the owner's hash. After the prelude's six ARGV: its
-- scope, user and tab; the origin's user, tab, API flag and page load.
-- Answers how many keys there were and the clear's version.
local n = redis.call('HLEN', KEYS[1])
if n == 0 then return {0, '0'} end
-- The origin first: it may keep the owner's hash, which must still be here
-- for that on a cluster's slot being moved (redis.go's declared).
local _, tab = origin_of(ARGV[10], ARGV[11], ARGV[12])
redis.call('DEL', KEYS[1])
local version = next_version()
publish(ARGV[7], ARGV[8], ARGV[9], '', 'clear', version, {ARGV[10], tab, ARGV[12], ARGV[13]})
return {n, version}
