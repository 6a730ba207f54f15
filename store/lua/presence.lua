-- presence.lua: after the prelude's six ARGV: this instance's id, how long
-- its share lives (ms), the share (JSON), and "1" if it changed. Keeps the
-- share, forgets the instances that stopped sharing, tells the others if it
-- changed, and answers every other live instance's share.
local inst, ttl, share, changed = ARGV[7], tonumber(ARGV[8]), ARGV[9], ARGV[10]
local live = p .. 'instances'
redis.call('SET', p .. 'presence:' .. inst, share, 'PX', ttl)
redis.call('ZADD', live, tonumber(now) + ttl, inst)
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
if changed == '1' then
  redis.call('PUBLISH', channel, message('', '', '', '', 'presence', '0', '', '', '0', inst, ''))
end
local out = {}
for _, other in ipairs(redis.call('ZRANGE', live, 0, -1)) do
  if other ~= inst then
    -- pcall: another instance's key, which no script can declare, may be on
    -- another node while a resharding moves this slot (redis.go's declared).
    local v = redis.pcall('GET', p .. 'presence:' .. other)
    if type(v) == 'string' then table.insert(out, v) end
  end
end
return out
