-- list.lua: KEYS[1] the owner's hash. Answers the sequence and the owner's
-- fields of one moment.
return {redis.call('GET', p .. 'seq') or '0', redis.call('HGETALL', KEYS[1])}
