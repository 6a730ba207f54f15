-- apply.lua: sets and increments, all or nothing. KEYS are the owners'
-- hashes, one per mutation. After the prelude's six ARGV: the keys an owner
-- may have; the origin's user, tab, API flag ("1") and page load; the count;
-- then per mutation its scope, user, tab, key, kind ("s" set, "i"
-- increment), value and the version it must have ("" any, "-1" none).
-- Answers the origin's tab number, then {version, value, 1 if it made the
-- key else 0} per mutation, then
-- the sequence after them all (a tab evicted over the cap takes one too).
local maxKeys, n = tonumber(ARGV[7]), tonumber(ARGV[12])
local function arg(i, j) return ARGV[12 + (i - 1) * 7 + j] end

-- Every condition, then room for every new key (two new keys of one owner
-- need room for two), before anything is written.
for i = 1, n do
  local want = arg(i, 7)
  if want ~= '' then
    local have = version_of(redis.call('HGET', KEYS[i], arg(i, 4)))
    if (want == '-1' and have ~= 0) or (want ~= '-1' and tonumber(want) ~= have) then
      return redis.error_reply('CONFLICT ' .. i)
    end
  end
end
local added, made = {}, {}
for i = 1, n do
  made[i] = 0
  if redis.call('HEXISTS', KEYS[i], arg(i, 4)) == 0 then
    made[i] = 1
    added[KEYS[i]] = (added[KEYS[i]] or 0) + 1
    if redis.call('HLEN', KEYS[i]) + added[KEYS[i]] > maxKeys then
      return redis.error_reply('TOOMANYKEYS')
    end
  end
end

local token, tab = origin_of(ARGV[8], ARGV[9], ARGV[10])
local origin = {ARGV[8], tab, ARGV[10], ARGV[11]}
local out = {tab}
for i = 1, n do
  local k, scope, uid, tid, key, kind, v = KEYS[i], arg(i, 1), arg(i, 2), arg(i, 3), arg(i, 4), arg(i, 5), arg(i, 6)
  if kind == 'i' then v = next_count(value_of(redis.call('HGET', k, key))) end
  local version = next_version()
  redis.call('HSET', k, key, field(version, token, v))
  keep(scope, uid, tid)
  publish(scope, uid, tid, key, 'set', version, origin, v)
  out[i + 1] = {version, v, made[i]}
end
out[n + 2] = redis.call('GET', p .. 'seq')
return out
