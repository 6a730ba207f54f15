-- delete.lua: KEYS[1] the owner's hash. After the prelude's six ARGV: its
-- scope, user, tab and the key; the origin's user, tab, API flag and page
-- load; the version the key must have ("" any). Answers 1, 0 without the
-- key, or a CONFLICT error.
local raw = redis.call('HGET', KEYS[1], ARGV[10])
if not raw then return 0 end
if ARGV[15] ~= '' and tonumber(ARGV[15]) ~= version_of(raw) then return redis.error_reply('CONFLICT 1') end
local _, tab = origin_of(ARGV[11], ARGV[12], ARGV[13]) -- before the hash may go (clear.lua)
redis.call('HDEL', KEYS[1], ARGV[10])
local version = next_version()
publish(ARGV[7], ARGV[8], ARGV[9], ARGV[10], 'delete', version, {ARGV[11], tab, ARGV[13], ARGV[14]})
return version
