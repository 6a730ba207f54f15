-- touch.lua: after the prelude's six ARGV: the user, the tab (or ''), and
-- '1' when the user's cookie came back. Answers 1, or 0 for an unknown user.
local uid, tid = ARGV[7], ARGV[8]
if redis.call('EXISTS', p .. 'm:' .. uid) == 0 then return 0 end
if ARGV[9] == '1' then redis.call('HSET', p .. 'm:' .. uid, 'r', '1') end
redis.call('HDEL', p .. 'm:' .. uid, 'k') -- a touch refreshes in full
if tid ~= '' and redis.call('ZSCORE', p .. 'tabs:' .. uid, tid) then
  keep('tab', uid, tid)
else
  keep('user', uid, '')
end
return 1
