"""The Lua scripts of the subscription store: every multi-key write is one script, so nothing
half-written can be observed (the record, the endpoint index and the bitmaps always agree)."""

from __future__ import annotations

from notifier.browsers import SERVICES
from notifier.keys import lua_key_functions
from notifier.subscriptions.records import INDEX_FIRST_ROUND

# Every script starts with the functions naming its keys (built from the prefix in ARGV[1]: this
# service does not run on Redis Cluster, so keys need not be declared in KEYS).
KEY_FUNCTIONS = lua_key_functions()

# The endpoint index's bucket for a field (linear hashing: ``subs:ixmeta`` holds the round ``k`` and the
# next bucket to split ``s``; buckets below ``s`` are already split into ``b`` and ``b + 2^k``).
IX_BUCKET = f"""
local function ix_bucket(p, field)
  local meta = redis.call('HMGET', subs_index_meta_key(p), 'k', 's')
  local k = tonumber(meta[1] or '{INDEX_FIRST_ROUND}')
  local s = tonumber(meta[2] or '0')
  local h = tonumber(string.sub(field, 1, 8), 16)
  local b = h % 2 ^ k
  if b < s then b = h % 2 ^ (k + 1) end
  return subs_index_key(p, b)
end
"""

# Count an index entry in or out; past INDEX_LOAD entries per bucket on average, split the next bucket.
IX_COUNT = f"""
local function ix_count(p, delta)
  local meta = subs_index_meta_key(p)
  local n = redis.call('HINCRBY', meta, 'n', delta)
  if delta < 0 then return end
  local got = redis.call('HMGET', meta, 'k', 's')
  local k = tonumber(got[1] or '{INDEX_FIRST_ROUND}')
  local s = tonumber(got[2] or '0')
  if n <= (2 ^ k + s) * tonumber(ARGV[#ARGV]) then return end
  local from = subs_index_key(p, s)
  local to = subs_index_key(p, s + 2 ^ k)
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

# The push services (for a removed id's bits) and the end of a reader's standing when it goes.
STANDING = (
    "local SERVICES = {"
    + ", ".join(f"'{name}'" for name in SERVICES)
    + """}
local function clear_bit(key, n)
  if redis.call('GETBIT', key, n) == 1 then redis.call('SETBIT', key, n, 0) end
end
local function clear_counter(key, n)
  if redis.call('BITFIELD_RO', key, 'GET', 'u8', '#' .. n)[1] ~= 0 then
    redis.call('BITFIELD', key, 'SET', 'u8', '#' .. n, 0)
  end
end
local function record_key_id(record)
  return string.match(record or '', '^%d+ [^ ]* [^ ]* [^ ]* [^ ]* ([^ ]*) ')
end
local function clear_standing(p, n)
  for _, service in ipairs(SERVICES) do clear_bit(subs_service_key(p, service), n) end
  clear_bit(subs_unreachable_key(p), n)
  clear_bit(subs_over_budget_key(p), n)
  clear_counter(subs_unshown_key(p), n)
  clear_counter(subs_unclicked_key(p), n)
end
"""
)

# Upsert in one round trip, atomically: two browsers racing on one endpoint cannot both count as new, and
# the topic bitmaps always match the stored topics.
# ARGV: prefix, index field, record tail, topics, created-if-new, day to count it as added on ('' for none:
# a migrated subscription was counted when it first came), site id, push service, VAPID key id, index load
# (last: ix_count reads it). The id's bit is set in its site's bitmap; a known endpoint stored under another
# site moves (an id is in exactly one site's bitmap). A page re-posting its subscription proves it reachable:
# its run of pushes never shown ends.
UPSERT = (
    KEY_FUNCTIONS
    + IX_BUCKET
    + IX_COUNT
    + STANDING
    + """
local p = ARGV[1]
local ix = ix_bucket(p, ARGV[2])
local n = redis.call('HGET', ix, ARGV[2])
local is_new = 0
if n then
  n = tonumber(n)
else
  n = redis.call('INCR', subs_seq_key(p)) - 1
  redis.call('HSET', ix, ARGV[2], n)
  ix_count(p, 1)
  is_new = 1
end
local rk, pos = subs_record_key(p, n)
local len = redis.call('LLEN', rk)
local created = ARGV[5]
local keep = {}
for t in string.gmatch(ARGV[4], '[^,]+') do keep[t] = true end
if pos < len then
  local old = redis.call('LINDEX', rk, pos)
  local c, t = string.match(old, '^(%d+) ([^ ]*) ')
  local old_key = record_key_id(old)
  if old_key and old_key ~= '' and old_key ~= ARGV[9] then
    redis.call('SETBIT', subs_vapid_key_key(p, old_key), n, 0)
  end
  if c then
    created = c
    for slug in string.gmatch(t, '[^,]+') do
      if not keep[slug] then redis.call('SETBIT', subs_topic_key(p, slug), n, 0) end
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
for t, _ in pairs(keep) do redis.call('SETBIT', subs_topic_key(p, t), n, 1) end
redis.call('SETBIT', subs_live_key(p), n, 1)
redis.call('SETBIT', subs_quarantined_key(p), n, 0)
redis.call('HDEL', subs_failures_key(p), n)
redis.call('HDEL', subs_first_failure_key(p), n)
redis.call('HDEL', subs_rejections_key(p), n)
local site = ARGV[7]
local own = subs_site_key(p, site)
if is_new == 0 and redis.call('GETBIT', own, n) == 0 then
  for _, other in ipairs(redis.call('SMEMBERS', sites_key(p))) do
    local key = subs_site_key(p, other)
    if other ~= site and redis.call('GETBIT', key, n) == 1 then redis.call('SETBIT', key, n, 0) end
  end
end
redis.call('SETBIT', own, n, 1)
redis.call('SADD', sites_key(p), site)
redis.call('SETBIT', subs_service_key(p, ARGV[8]), n, 1)
if ARGV[9] ~= '' then redis.call('SETBIT', subs_vapid_key_key(p, ARGV[9]), n, 1) end
clear_bit(subs_unreachable_key(p), n)
clear_counter(subs_unshown_key(p), n)
if is_new == 1 and ARGV[6] ~= '' then
  redis.call('HINCRBY', subs_daily_key(p, 'added'), ARGV[6], 1)
  redis.call('HINCRBY', subs_daily_site_key(p, 'added', site), ARGV[6], 1)
end
return {n, is_new}
"""
)

# Remove record n (its stored text ``old``) with its index entry ``field`` and every bit and count of it.
REMOVE = """
local function remove_record(p, n, field, old, day)
  local rk, pos = subs_record_key(p, n)
  local ix = ix_bucket(p, field)
  local t = string.match(old, '^%d+ ([^ ]*) ')
  local key_id = record_key_id(old)
  if key_id and key_id ~= '' then redis.call('SETBIT', subs_vapid_key_key(p, key_id), n, 0) end
  redis.call('LSET', rk, pos, '')
  if redis.call('HGET', ix, field) == tostring(n) then
    redis.call('HDEL', ix, field)
    ix_count(p, -1)
  end
  for slug in string.gmatch(t or '', '[^,]+') do redis.call('SETBIT', subs_topic_key(p, slug), n, 0) end
  redis.call('SETBIT', subs_live_key(p), n, 0)
  redis.call('SETBIT', subs_quarantined_key(p), n, 0)
  redis.call('HDEL', subs_failures_key(p), n)
  redis.call('HDEL', subs_first_failure_key(p), n)
  redis.call('HDEL', subs_rejections_key(p), n)
  redis.call('HINCRBY', subs_daily_key(p, 'removed'), day, 1)
  clear_standing(p, n)
  for _, site in ipairs(redis.call('SMEMBERS', sites_key(p))) do
    local key = subs_site_key(p, site)
    if redis.call('GETBIT', key, n) == 1 then
      redis.call('SETBIT', key, n, 0)
      redis.call('HINCRBY', subs_daily_site_key(p, 'removed', site), day, 1)
    end
  end
end
"""

# Remove subscription n (ARGV: prefix, n, index field, expected p256dh or '', day). With an expected key, a
# record that changed since it was read (the browser subscribed again) is left alone.
DELETE = (
    KEY_FUNCTIONS
    + IX_BUCKET
    + IX_COUNT
    + STANDING
    + REMOVE
    + """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk, pos = subs_record_key(p, n)
local ix = ix_bucket(p, ARGV[3])
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then
  if redis.call('HGET', ix, ARGV[3]) == ARGV[2] then
    redis.call('HDEL', ix, ARGV[3])
    ix_count(p, -1)
  end
  return 0
end
if ARGV[4] ~= '' then
  local key = string.match(old, '^%d+ [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* [^ ]* ([^ ]*) ')
  if key ~= ARGV[4] then return 0 end
end
remove_record(p, n, ARGV[3], old, ARGV[5])
return 1
"""
)

# The browser replaced its subscription (``pushsubscriptionchange``, a new VAPID key): the new endpoint takes
# the old one's place, in one step, so the reader is never stored twice nor lost in between.
# ARGV: prefix, old index field, new index field, the new record after its language (browser, key id,
# expiration, p256dh, auth, endpoint), seen, day, site, push service, VAPID key id, index load (last:
# ix_count reads it).
# The old subscription must be stored under ``site``. In place: the id, its topics, language, site and
# created stay; the index entry moves to the new endpoint; its failure runs and standing start afresh.
# When the new endpoint is stored already (its page posted it first), that one keeps its id and takes the
# old one's topics and language, and the old one goes. Returns {id, 1} (in place), {id, 2} (merged into
# the stored new one) or {-1, 0} (no old subscription of that site: the caller stores the new one).
REPLACE = (
    KEY_FUNCTIONS
    + IX_BUCKET
    + IX_COUNT
    + STANDING
    + REMOVE
    + """
local p, site = ARGV[1], ARGV[7]
local oix = ix_bucket(p, ARGV[2])
local n = redis.call('HGET', oix, ARGV[2])
if not n then return {-1, 0} end
n = tonumber(n)
if redis.call('GETBIT', subs_site_key(p, site), n) == 0 then return {-1, 0} end
local rk, pos = subs_record_key(p, n)
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then return {-1, 0} end
local created, topics, lang = string.match(old, '^(%d+) ([^ ]*) [^ ]* ([^ ]*) ')
local function fresh(id, record)
  local before = record_key_id(record)
  if before and before ~= '' then redis.call('SETBIT', subs_vapid_key_key(p, before), id, 0) end
  if ARGV[9] ~= '' then redis.call('SETBIT', subs_vapid_key_key(p, ARGV[9]), id, 1) end
  for _, service in ipairs(SERVICES) do clear_bit(subs_service_key(p, service), id) end
  redis.call('SETBIT', subs_service_key(p, ARGV[8]), id, 1)
  clear_bit(subs_unreachable_key(p), id)
  clear_counter(subs_unshown_key(p), id)
  redis.call('SETBIT', subs_quarantined_key(p), id, 0)
  redis.call('HDEL', subs_failures_key(p), id)
  redis.call('HDEL', subs_first_failure_key(p), id)
  redis.call('HDEL', subs_rejections_key(p), id)
end
local nix = ix_bucket(p, ARGV[3])
local m = redis.call('HGET', nix, ARGV[3])
if m and tonumber(m) ~= n then
  m = tonumber(m)
  local mrk, mpos = subs_record_key(p, m)
  local mold = redis.call('LINDEX', mrk, mpos) or ''
  local mcreated, mtopics = string.match(mold, '^(%d+) ([^ ]*) ')
  local keep = {}
  for slug in string.gmatch(topics, '[^,]+') do keep[slug] = true end
  for slug in string.gmatch(mtopics or '', '[^,]+') do
    if not keep[slug] then redis.call('SETBIT', subs_topic_key(p, slug), m, 0) end
  end
  for slug, _ in pairs(keep) do redis.call('SETBIT', subs_topic_key(p, slug), m, 1) end
  local record = (mcreated or created) .. ' ' .. topics .. ' ' .. ARGV[5] .. ' ' .. lang .. ' ' .. ARGV[4]
  if mpos < redis.call('LLEN', mrk) then redis.call('LSET', mrk, mpos, record) end
  redis.call('SETBIT', subs_live_key(p), m, 1)
  for _, other in ipairs(redis.call('SMEMBERS', sites_key(p))) do
    if other ~= site then clear_bit(subs_site_key(p, other), m) end
  end
  redis.call('SETBIT', subs_site_key(p, site), m, 1)
  fresh(m, mold)
  remove_record(p, n, ARGV[2], old, ARGV[6])
  return {m, 2}
end
if ARGV[2] ~= ARGV[3] then
  redis.call('HDEL', oix, ARGV[2])
  ix_count(p, -1)
  redis.call('HSET', nix, ARGV[3], n)
  ix_count(p, 1)
end
redis.call('LSET', rk, pos, created .. ' ' .. topics .. ' ' .. ARGV[5] .. ' ' .. lang .. ' ' .. ARGV[4])
fresh(n, old)
return {n, 1}
"""
)

LOOKUP = (
    KEY_FUNCTIONS
    + IX_BUCKET
    + """
return redis.call('HGET', ix_bucket(ARGV[1], ARGV[2]), ARGV[2])
"""
)

# Replace the topics of subscription n (ARGV: prefix, n, topics). Returns 0 when it is gone.
SET_TOPICS = (
    KEY_FUNCTIONS
    + """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local rk, pos = subs_record_key(p, n)
local old = redis.call('LINDEX', rk, pos)
if not old or old == '' then return 0 end
local c, t, rest = string.match(old, '^(%d+) ([^ ]*) (.*)$')
local keep = {}
for slug in string.gmatch(ARGV[3], '[^,]+') do keep[slug] = true end
for slug in string.gmatch(t, '[^,]+') do
  if not keep[slug] then redis.call('SETBIT', subs_topic_key(p, slug), n, 0) end
end
for slug, _ in pairs(keep) do redis.call('SETBIT', subs_topic_key(p, slug), n, 1) end
redis.call('LSET', rk, pos, c .. ' ' .. ARGV[3] .. ' ' .. rest)
return 1
"""
)

# Count the union of topic bitmaps, within one site's when ARGV[2] names its bitmap (ARGV: scratch key,
# site bitmap or ''; KEYS: the bitmaps). The scratch key is removed.
UNION_COUNT = """
redis.call('BITOP', 'OR', ARGV[1], unpack(KEYS))
if ARGV[2] ~= '' then redis.call('BITOP', 'AND', ARGV[1], ARGV[1], ARGV[2]) end
local n = redis.call('BITCOUNT', ARGV[1])
redis.call('DEL', ARGV[1])
return n
"""

# Count the ids set in every one of KEYS (ARGV: scratch key, removed before returning).
INTERSECT_COUNT = """
redis.call('BITOP', 'AND', ARGV[1], unpack(KEYS))
local n = redis.call('BITCOUNT', ARGV[1])
redis.call('DEL', ARGV[1])
return n
"""

# Give the subscriptions stored before sites existed to the default site, once (ARGV: prefix, default site,
# scratch key). Every live id that no other site's bitmap holds joins the default site's: ids a site-aware
# process stored meanwhile keep their site. Returns the default site's size, or -1 when already done.
MIGRATE_SITES = (
    KEY_FUNCTIONS
    + """
local p = ARGV[1]
if redis.call('EXISTS', sites_migrated_key(p)) == 1 then return -1 end
local live = subs_live_key(p)
local dest = subs_site_key(p, ARGV[2])
local tmp = ARGV[3]
local others = {}
for _, site in ipairs(redis.call('SMEMBERS', sites_key(p))) do
  if site ~= ARGV[2] then table.insert(others, subs_site_key(p, site)) end
end
local len = redis.call('STRLEN', live)
if len > 0 then
  redis.call('DEL', tmp)
  if #others > 0 then redis.call('BITOP', 'OR', tmp, unpack(others)) end
  -- NOT only covers the bytes it has: make it at least as long as the live bitmap first.
  local last = len * 8 - 1
  redis.call('SETBIT', tmp, last, redis.call('GETBIT', tmp, last))
  redis.call('BITOP', 'NOT', tmp, tmp)
  redis.call('BITOP', 'AND', tmp, tmp, live)
  redis.call('BITOP', 'OR', dest, dest, tmp)
  redis.call('DEL', tmp)
end
redis.call('SADD', sites_key(p), ARGV[2])
redis.call('SET', sites_migrated_key(p), ARGV[2])
return redis.call('BITCOUNT', dest)
"""
)


# Count pushes a batch had accepted (ARGV: prefix, unreachable after, reader budget, day, then the ids):
# each reader's run of pushes never shown and of pushes since its last click grows by one (saturating
# at 255); at ``unreachable after`` (0: never) it becomes unreachable, at ``reader budget`` (0: never)
# it is over its budget; it joins the day's readers. Returns how many became unreachable.
MARK_SENT = (
    KEY_FUNCTIONS
    + """
local p = ARGV[1]
local after, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local day = readers_sent_key(p, ARGV[4])
local unshown, unclicked = subs_unshown_key(p), subs_unclicked_key(p)
local unreach, over = subs_unreachable_key(p), subs_over_budget_key(p)
local newly = 0
for first = 5, #ARGV, 400 do
  local last = math.min(#ARGV, first + 399)
  local ops = {'OVERFLOW', 'SAT'}
  for i = first, last do
    ops[#ops + 1] = 'INCRBY'
    ops[#ops + 1] = 'u8'
    ops[#ops + 1] = '#' .. ARGV[i]
    ops[#ops + 1] = 1
  end
  local shown_runs = redis.call('BITFIELD', unshown, unpack(ops))
  local click_runs = redis.call('BITFIELD', unclicked, unpack(ops))
  for i = first, last do
    local k = i - first + 1
    local n = tonumber(ARGV[i])
    if after > 0 and shown_runs[k] >= after and redis.call('SETBIT', unreach, n, 1) == 0 then
      newly = newly + 1
    end
    if budget > 0 and click_runs[k] >= budget then redis.call('SETBIT', over, n, 1) end
    redis.call('SETBIT', day, n, 1)
  end
end
redis.call('EXPIRE', day, 40 * 86400)
return newly
"""
)

# The audience of a campaign (KEYS: the bitmaps OR-ed; ARGV: destination, scratch key, site bitmap or '',
# then the bitmaps of readers left out, in order). Each left-out bitmap is removed from the audience as
# ``audience XOR (audience AND left_out)``, which, unlike NOT, needs no padding to the audience's length.
# Returns {audience size, readers left out by each, in order}.
SNAPSHOT = """
local dest, tmp = ARGV[1], ARGV[2]
redis.call('BITOP', 'OR', dest, unpack(KEYS))
if ARGV[3] ~= '' then redis.call('BITOP', 'AND', dest, dest, ARGV[3]) end
local out = {0}
for i = 4, #ARGV do
  redis.call('BITOP', 'AND', tmp, dest, ARGV[i])
  local n = redis.call('BITCOUNT', tmp)
  if n > 0 then redis.call('BITOP', 'XOR', dest, dest, tmp) end
  out[#out + 1] = n
end
redis.call('DEL', tmp)
out[1] = redis.call('BITCOUNT', dest)
return out
"""
