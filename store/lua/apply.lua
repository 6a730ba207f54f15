-- apply.lua: sets and increments, all or nothing. KEYS are the owners'
-- hashes, one per mutation. After the prelude's six ARGV: the keys an owner
-- may have, the origin, the count, then per mutation its scope, user, tab,
-- key, kind ("s" set, "i" increment) and value. Answers {version, value}
-- per mutation.
local maxKeys, origin, n = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local function arg(i, j) return ARGV[9 + (i - 1) * 6 + j] end

-- Room for every new key first: two new keys of one owner need room for two.
local added = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[i], arg(i, 4)) == 0 then
    added[KEYS[i]] = (added[KEYS[i]] or 0) + 1
    if redis.call('HLEN', KEYS[i]) + added[KEYS[i]] > maxKeys then
      return redis.error_reply('TOOMANYKEYS')
    end
  end
end

local out = {}
for i = 1, n do
  local k, scope, uid, tid, key, kind, v = KEYS[i], arg(i, 1), arg(i, 2), arg(i, 3), arg(i, 4), arg(i, 5), arg(i, 6)
  if kind == 'i' then v = next_count(value_of(redis.call('HGET', k, key))) end
  local version = next_version()
  redis.call('HSET', k, key, field(version, v))
  keep(scope, uid, tid)
  publish(scope, uid, tid, key, 'set', version, origin)
  out[i] = {version, v}
end
return out
