"""The Lua scripts of the subscription store: every multi-key write is one script, so nothing
half-written can be observed (the record, the endpoint index and the bitmaps always agree)."""

from __future__ import annotations

# The endpoint index's bucket for a field (linear hashing: ``subs:ixmeta`` holds the round ``k`` and the
# next bucket to split ``s``; buckets below ``s`` are already split into ``b`` and ``b + 2^k``).
IX_BUCKET = """
local function ix_bucket(p, field)
  local meta = redis.call('HMGET', p .. 'subs:ixmeta', 'k', 's')
  local k = tonumber(meta[1] or '6')
  local s = tonumber(meta[2] or '0')
  local h = tonumber(string.sub(field, 1, 8), 16)
  local b = h % 2 ^ k
  if b < s then b = h % 2 ^ (k + 1) end
  return p .. 'subs:ix:' .. string.format('%d', b)
end
"""

# Count an index entry in or out; past INDEX_LOAD entries per bucket on average, split the next bucket.
IX_COUNT = """
local function ix_count(p, delta)
  local meta = p .. 'subs:ixmeta'
  local n = redis.call('HINCRBY', meta, 'n', delta)
  if delta < 0 then return end
  local got = redis.call('HMGET', meta, 'k', 's')
  local k = tonumber(got[1] or '6')
  local s = tonumber(got[2] or '0')
  if n <= (2 ^ k + s) * tonumber(ARGV[#ARGV]) then return end
  local from = p .. 'subs:ix:' .. string.format('%d', s)
  local to = p .. 'subs:ix:' .. string.format('%d', s + 2 ^ k)
  local entries = redis.call('HGETALL', from)
  for i = 1, #entries, 2 do
    local h = tonumber(string.sub(entries[i], 1, 8), 16)
    if h % 2 ^ (k + 1) ~= s then
      redis.call('HSET', to, entries[i], entries[i + 1])
      redis.call('HDEL', from, entries[i])
    end
  end
  s = s + 1
  if s == 2 ^ k then
    k = k + 1
    s = 0
  end
  redis.call('HSET', meta, 'k', string.format('%d', k), 's', string.format('%d', s))
end
"""

# Upsert in one round trip, atomically: two browsers racing on one endpoint cannot both count as new, and
# the topic bitmaps always match the stored topics. Keys are built from the prefix inside the script (this
# service does not run on Redis Cluster).
# ARGV: prefix, index field, record tail, topics, created-if-new, day to count it as added on ('' for none:
# a migrated subscription was counted when it first came), index load.
UPSERT = (
    IX_BUCKET
    + IX_COUNT
    + """
local p = ARGV[1]
local ix = ix_bucket(p, ARGV[2])
local n = redis.call('HGET', ix, ARGV[2])
local is_new = 0
if n then
  n = tonumber(n)
else
  n = redis.call('INCR', p .. 'subs:seq') - 1
  redis.call('HSET', ix, ARGV[2], n)
  ix_count(p, 1)
  is_new = 1
end
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local len = redis.call('LLEN', rk)
local created = ARGV[5]
local keep = {}
for t in string.gmatch(ARGV[4], '[^,]+') do keep[t] = true end
if pos < len then
  local old = redis.call('LINDEX', rk, pos)
  local c, t = string.match(old, '^(%d+) ([^ ]*) ')
  if c then
    created = c
    for slug in string.gmatch(t, '[^,]+') do
      if not keep[slug] then redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
    end
  else
    is_new = 1
  end
  redis.call('LSET', rk, pos, created .. ' ' .. ARGV[3])
else
  while len < pos do
    len = redis.call('RPUSH', rk, '')
  end
  redis.call('RPUSH', rk, created .. ' ' .. ARGV[3])
end
for t, _ in pairs(keep) do redis.call('SETBIT', p .. 'subs:t:' .. t, n, 1) end
redis.call('SETBIT', p .. 'subs:live', n, 1)
redis.call('SETBIT', p .. 'subs:q', n, 0)
redis.call('HDEL', p .. 'subs:fails', n)
redis.call('HDEL', p .. 'subs:fail1', n)
if is_new == 1 and ARGV[6] ~= '' then redis.call('HINCRBY', p .. 'subs:daily:added', ARGV[6], 1) end
return {n, is_new}
"""
)

# Remove subscription n (ARGV: prefix, n, index field, expected p256dh or '', day). With an expected key, a
# record that changed since it was read (the browser subscribed again) is left alone.
DELETE = (
    IX_BUCKET
    + IX_COUNT
    + """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local ix = ix_bucket(p, ARGV[3])
local function unindex()
  if redis.call('HGET', ix, ARGV[3]) == ARGV[2] then
    redis.call('HDEL', ix, ARGV[3])
    ix_count(p, -1)
  end
end
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then
  unindex()
  return 0
end
local t = string.match(old, '^%d+ ([^ ]*) ')
if ARGV[4] ~= '' then
  local key = string.match(old, '^%d+ [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* ([^ ]*) ')
  if key ~= ARGV[4] then return 0 end
end
redis.call('LSET', rk, pos, '')
unindex()
for slug in string.gmatch(t or '', '[^,]+') do redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
redis.call('SETBIT', p .. 'subs:live', n, 0)
redis.call('SETBIT', p .. 'subs:q', n, 0)
redis.call('HDEL', p .. 'subs:fails', n)
redis.call('HDEL', p .. 'subs:fail1', n)
redis.call('HINCRBY', p .. 'subs:daily:removed', ARGV[5], 1)
return 1
"""
)

LOOKUP = (
    IX_BUCKET
    + """
return redis.call('HGET', ix_bucket(ARGV[1], ARGV[2]), ARGV[2])
"""
)

# Replace the topics of subscription n (ARGV: prefix, n, topics). Returns 0 when it is gone.
SET_TOPICS = """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk = p .. 'subs:rec:' .. string.format('%d', math.floor(n / 128))
local pos = n % 128
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then return 0 end
local c, t, rest = string.match(old, '^(%d+) ([^ ]*) (.*)$')
local keep = {}
for slug in string.gmatch(ARGV[3], '[^,]+') do keep[slug] = true end
for slug in string.gmatch(t, '[^,]+') do
  if not keep[slug] then redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 0) end
end
for slug, _ in pairs(keep) do redis.call('SETBIT', p .. 'subs:t:' .. slug, n, 1) end
redis.call('LSET', rk, pos, c .. ' ' .. ARGV[3] .. ' ' .. rest)
return 1
"""

# Count the union of topic bitmaps (ARGV: scratch key; KEYS: the bitmaps). The scratch key is removed.
UNION_COUNT = """
redis.call('BITOP', 'OR', ARGV[1], unpack(KEYS))
local n = redis.call('BITCOUNT', ARGV[1])
redis.call('DEL', ARGV[1])
return n
"""
