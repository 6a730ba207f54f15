-- copy.lua: KEYS[1] the tab to copy, KEYS[2] the new tab. After the
-- prelude's six ARGV: the user and the new tab's id. The new tab must hold
-- no keys (it may be numbered already): a copy never overwrites. The copied
-- keys keep their time and origin, with a new version. Answers the
-- sequence after it.
local uid, tid = ARGV[7], ARGV[8]
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('TABEXISTS')
end
local all = redis.call('HGETALL', KEYS[1])
if #all > 0 then
  local version = next_version()
  for i = 1, #all, 2 do
    redis.call('HSET', KEYS[2], all[i], version .. ' ' .. string.match(all[i + 1], '^%S+ (.*)$'))
  end
  evict(uid, tid)
end
keep('tab', uid, tid)
return redis.call('GET', p .. 'seq') or '0'
