-- prelude.lua comes first in every script (see redis.go). ARGV[1] to ARGV[6]
-- are always: the key prefix, now (unix ms), the user TTL, the one-shot TTL
-- and the tab TTL (ms), and how many tabs a user may have.
local p, now = ARGV[1], ARGV[2]
-- On a Redis Cluster p carries the hash tag of the keys the script touches
-- ("scopes:{u:id}:"); the channel is the one of every instance, without it.
local channel = string.gsub(p, '{[^}]*}:$', '') .. 'changes'

local userTTL, oneShot, tabTTL, maxTabs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

-- A stored field is "version ms @origin json", the origin "@" kind ("p" a
-- page, "a" the API) ":" tab number ":" user (redis.go parses it the same
-- way). A field from before provenance has no origin, and JSON never starts
-- with "@".
local function field(version, origin, json) return version .. ' ' .. now .. ' ' .. origin .. ' ' .. json end
local function value_of(raw)
  if not raw then return nil end
  local rest = string.match(raw, '^%S+ %S+ (.*)$')
  if rest and string.sub(rest, 1, 1) == '@' then return string.match(rest, '^%S+ (.*)$') end
  return rest
end
local function version_of(raw)
  if not raw then return 0 end
  return tonumber(string.match(raw, '^(%S+) '))
end

-- next_version takes the next number of the store-wide sequence, as text:
-- Lua's numbers are doubles, and text never rounds.
local function next_version() return string.format('%d', redis.call('INCR', p .. 'seq')) end

-- add_one and sub_one count on the decimal digits of a number without
-- leading zeros (sub_one's above zero).
local function add_one(d)
  local i = #d
  while i > 0 and string.sub(d, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #d) end
  return string.sub(d, 1, i - 1) .. string.char(string.byte(d, i) + 1) .. string.rep('0', #d - i)
end
local function sub_one(d)
  local i = #d
  while string.sub(d, i, i) == '0' do i = i - 1 end
  local r = string.sub(d, 1, i - 1) .. string.char(string.byte(d, i) - 1) .. string.rep('9', #d - i)
  r = string.gsub(r, '^0+', '')
  if r == '' then return '0' end
  return r
end

-- next_count is store.NextCount: an integer of int64's range counts up;
-- anything else (no value, not an integer, or the largest one) starts again
-- at 1. It counts on the digits, as a double is exact only up to 2^53.
local function next_count(v)
  local sign, digits = string.match(v or '', '^([+-]?)(%d+)$')
  if not digits then return '1' end
  digits = string.gsub(digits, '^0+', '')
  if digits == '' then digits = '0' end
  local max = '9223372036854775807'
  if sign == '-' then max = '9223372036854775808' end
  if #digits > #max or (#digits == #max and digits > max) then return '1' end -- beyond int64
  if sign ~= '-' then
    if digits == '9223372036854775807' then return '1' end
    return add_one(digits)
  end
  if digits == '0' then return '1' end -- "-0" is zero
  local m = sub_one(digits)
  if m == '0' then return '0' end
  return '-' .. m
end

-- message is a change as the Go type message (redis.go) reads it: format 1,
-- then scope, user, tab, key, op, version, time, the origin's user, tab
-- number, API flag ('1') and page load, and the value last, joined by the
-- unit separator.
local function message(scope, uid, tid, key, op, version, ou, on, oa, g, value)
  return table.concat({'1', scope, uid, tid, key, op, version, now, ou, on, oa, g, value}, '\31')
end

-- publish sends one change on the changes channel; o is the origin {user,
-- tab number, api, page load}; value, a set's new JSON, which keeps every
-- instance's cached snapshots current.
local function publish(scope, uid, tid, key, op, version, o, value)
  redis.call('PUBLISH', channel, message(scope, uid, tid, key, op, version, o[1], o[2], o[3], o[4], value or ''))
end

-- evict tells every instance that a tab's keys went without a change of
-- their own (a tab evicted over the cap, a tab copied into): a cached
-- snapshot of it is dropped.
local function evict(uid, tid)
  redis.call('PUBLISH', channel, message('tab', uid, tid, '', 'evict', next_version(), '', '', '0', '', ''))
end

local function ttl_of(uid)
  if redis.call('HGET', p .. 'm:' .. uid, 'r') == '1' then return userTTL end
  return oneShot
end

-- keepEvery is how often a user's writes refresh its TTLs and its tabs'
-- last use: once an hour, as Touch (most writes then cost two lookups, not
-- a dozen commands).
local keepEvery = 3600000

-- kept says the user (and tab) were kept within keepEvery and the owner
-- written has its TTL: nothing to refresh.
local function kept(scope, uid, tid)
  local m = redis.call('HMGET', p .. 'm:' .. uid, 'k')
  if not m[1] or tonumber(now) - tonumber(m[1]) >= keepEvery then return false end
  if scope ~= 'tab' then return redis.call('PTTL', p .. 'o:user:' .. uid) ~= -1 end
  return redis.call('PTTL', p .. 'o:tab:' .. uid .. ':' .. tid) ~= -1 and redis.call('HEXISTS', p .. 'tn:' .. uid, tid) == 1
end

-- keep refreshes the TTLs of a user (and tab) and caps the user's tabs.
local function keep(scope, uid, tid)
  if scope == 'general' or kept(scope, uid, tid) then return end
  local ttl = ttl_of(uid)
  local mk = p .. 'm:' .. uid
  redis.call('HSETNX', mk, 'c', now)
  redis.call('HSET', mk, 'k', now)
  redis.call('PEXPIRE', mk, ttl)
  redis.call('PEXPIRE', p .. 'o:user:' .. uid, ttl)
  local z = p .. 'tabs:' .. uid
  redis.call('PEXPIRE', z, ttl)
  local names = p .. 'tn:' .. uid -- each tab's number
  redis.call('PEXPIRE', names, ttl)
  if scope ~= 'tab' then return end
  redis.call('PEXPIRE', p .. 'o:tab:' .. uid .. ':' .. tid, tabTTL)
  local added = redis.call('ZADD', z, now, tid)
  redis.call('PEXPIRE', z, ttl) -- again: ZADD may have just made the set
  if redis.call('HEXISTS', names, tid) == 0 then
    -- A new tab takes its user's next number, never given again.
    redis.call('HSET', names, tid, redis.call('HINCRBY', mk, 'n', 1))
    redis.call('PEXPIRE', names, ttl)
  end
  if added == 1 then
    local over = redis.call('ZCARD', z) - maxTabs
    if over > 0 then
      for _, old in ipairs(redis.call('ZRANGE', z, 0, over)) do
        if over > 0 and old ~= tid then
          -- pcall: no script can declare this key (redis.go's declared), and
          -- on a slot being moved it may be on the other node already; it
          -- then expires with its TTL.
          redis.pcall('DEL', p .. 'o:tab:' .. uid .. ':' .. old)
          evict(uid, old)
          redis.call('ZREM', z, old)
          redis.call('HDEL', names, old)
          over = over - 1
        end
      end
    end
  end
end

-- tab_number makes a tab known (numbering it if it is new) and returns its
-- number.
local function tab_number(uid, tid)
  keep('tab', uid, tid)
  return tonumber(redis.call('HGET', p .. 'tn:' .. uid, tid))
end

-- origin_of is the stored origin of a change by user uid: through the API,
-- or from its tab tid (numbered here), or unknown. It returns the token and
-- the tab number. A tid of "#" and a number is a tab numbered already (on a
-- cluster, a script outside the user's slot cannot number it).
local function origin_of(uid, tid, api)
  if api == '1' then return '@a:0:' .. uid, 0 end
  if uid == '' or tid == '' then return '@p:0:' .. uid, 0 end
  local known = string.match(tid, '^#(%d+)$')
  if known then return '@p:' .. known .. ':' .. uid, tonumber(known) end
  local n = tab_number(uid, tid)
  return '@p:' .. n .. ':' .. uid, n
end

