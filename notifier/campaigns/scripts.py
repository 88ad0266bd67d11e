"""The Lua scripts that write a campaign's hash: every state change goes through the one transition table.

:data:`STATE_FUNCTIONS` is generated from :data:`notifier.campaigns.model.TRANSITIONS` and
:data:`~notifier.campaigns.model.STAMPS`, so a script can no more move a campaign along a path
the table forbids than Python can.
"""

from __future__ import annotations

from notifier.campaigns.model import DONE, FINAL, PAUSED, SENDING, STAMPS, TRANSITIONS, CampaignState


def _lua_set(names: tuple[CampaignState, ...] | list[CampaignState]) -> str:
    return "{" + ", ".join(f"{name} = true" for name in names) + "}"


# move(key, new, now, sources): move the campaign at ``key`` to ``new`` when the table allows it from its
# current state (and, with ``sources``, the current state is one of them), stamping the state's time field
# once. Returns 'OK', the current state when the move is not allowed, or false when the campaign is missing.
_TABLE = ", ".join(f"{state} = {_lua_set(targets)}" for state, targets in TRANSITIONS.items())
_STAMPS = ", ".join(f"{state} = '{stamp}'" for state, stamp in STAMPS.items())
STATE_FUNCTIONS = f"""
local TRANSITIONS = {{{_TABLE}}}
local STAMPS = {{{_STAMPS}}}
local FINAL = {_lua_set(FINAL)}
local function move(key, new, now, sources)
  local current = redis.call('HGET', key, 'state')
  if not current then return false end
  local allowed = TRANSITIONS[current]
  if not (allowed and allowed[new]) or (sources and not sources[current]) then return current end
  redis.call('HSET', key, 'state', new)
  local stamp = STAMPS[new]
  if stamp then redis.call('HSETNX', key, stamp, now) end
  return 'OK'
end
"""

# Compare-and-set of the state, so two processes never both move a campaign. KEYS: the campaign.
# ARGV: new state, reason ('' keeps it), now, allowed sources (comma-separated, '' for any the table
# allows), then field/value pairs written with the move.
SET_STATE = (
    STATE_FUNCTIONS
    + """
local sources = nil
if ARGV[4] ~= '' then
  sources = {}
  for s in string.gmatch(ARGV[4], '[^,]+') do sources[s] = true end
end
local moved = move(KEYS[1], ARGV[1], ARGV[3], sources)
if moved == false then return {err = 'missing'} end
if moved ~= 'OK' then return moved end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 'OK'
"""
)

# Reserve a unit of ``pending`` for a batch about to be enqueued, once per batch id.
# KEYS: the campaign, its reserved batch ids. ARGV: batch id. Returns 1 when reserved now.
RESERVE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'pending', 1)
  return 1
end
return 0
"""

# Give back one unit of ``pending`` exactly once per batch id, add the batch's counters and its first/last
# accepted times, and finish the campaign when nothing is pending any more: ``done``, or ``paused`` while
# messages are held back from push services (their reasons become the campaign's). KEYS: the campaign, its
# done batch ids, its held-back services (notifier.breakers). ARGV: batch id, now, first sent ('' for none),
# last sent, number of counters, counter/count pairs. Returns what is still pending (-1: this batch had
# already finished).
FINISH = (
    STATE_FUNCTIONS
    + f"""
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return -1 end
if ARGV[3] ~= '' then
  local first = redis.call('HGET', KEYS[1], 'first_sent')
  if not first or tonumber(ARGV[3]) < tonumber(first) then
    redis.call('HSET', KEYS[1], 'first_sent', ARGV[3])
  end
  local last = redis.call('HGET', KEYS[1], 'last_sent')
  if not last or tonumber(ARGV[4]) > tonumber(last) then
    redis.call('HSET', KEYS[1], 'last_sent', ARGV[4])
  end
end
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[1], ARGV[6 + 2 * i], ARGV[7 + 2 * i])
end
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
if pending <= 0 then
  local held = redis.call('HVALS', KEYS[3])
  if #held > 0 then
    if move(KEYS[1], '{PAUSED}', ARGV[2], nil) == 'OK' then
      redis.call('HSET', KEYS[1], 'reason',
        'paused: messages held back from push services: ' .. table.concat(held, '; '))
    end
  else
    local moved = move(KEYS[1], '{DONE}', ARGV[2], nil)
    if moved and FINAL[moved] then redis.call('HSETNX', KEYS[1], 'finished', ARGV[2]) end
  end
end
return pending
"""
)


# Count a receipt once per campaign and subscription, in one round trip: a new one adds to the campaign's
# counter and timeline, and ends the reader's run of pushes never shown (and, for a click, of pushes never
# clicked: the reader is back within its budget, and joins the day's clickers); a repeat counts nothing
# but its token's repeats (for the per-token limit). The reader's standing is the subscription store's
# (its keys come from notifier.keys like every other; this script is the one writer of them on a receipt).
# KEYS: campaign hash, receipt set, timeline, repeats counter, unshown counters, unreachable bitmap,
# unclicked counters, over-budget bitmap, the day's clickers. ARGV: sid, kind, timeline field, receipt set
# TTL, repeat window (seconds), day bitmap TTL. Returns {0, 0} when counted, {-1, 0} for an unknown
# campaign, else {repeats in the current window, seconds left in it}.
COUNT_RECEIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local function clear_bit(key, n)
  if redis.call('GETBIT', key, n) == 1 then redis.call('SETBIT', key, n, 0) end
end
local function clear_counter(key, n)
  if redis.call('BITFIELD_RO', key, 'GET', 'u8', '#' .. n)[1] ~= 0 then
    redis.call('BITFIELD', key, 'SET', 'u8', '#' .. n, 0)
  end
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  local n = tonumber(ARGV[1])
  if n and n >= 0 and n < 4294967296 and n == math.floor(n) then
    clear_counter(KEYS[5], n)
    clear_bit(KEYS[6], n)
    if ARGV[2] == 'clicked' then
      clear_counter(KEYS[7], n)
      clear_bit(KEYS[8], n)
      redis.call('SETBIT', KEYS[9], n, 1)
      redis.call('EXPIRE', KEYS[9], ARGV[6])
    end
  end
  return {0, 0}
end
local n = redis.call('INCR', KEYS[4])
if n == 1 then redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return {n, redis.call('TTL', KEYS[4])}
"""

# Hold a push service's messages back for a campaign (notifier.breakers decides when). The hold is created
# when ``force`` (a breaker opened in this batch, or a caller's own reason) or when a breaker of the service
# is open; otherwise the service was resumed while the batch ran: nothing is held, a follow-up batch id is
# reserved (a unit of ``pending``) and 0 returned so the caller sends the ids now.
# KEYS: campaign, its holds, its held list for the service, the open breakers, its reserved batch ids.
# ARGV: service, reason, force ('1'/'0'), follow-up batch id, sids...
HOLD_SERVICE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  local open = ARGV[3] == '1'
    or redis.call('HEXISTS', KEYS[4], 'gone:' .. ARGV[1]) == 1
    or redis.call('HEXISTS', KEYS[4], 'key:' .. ARGV[1]) == 1
  if not open then
    if redis.call('SADD', KEYS[5], ARGV[4]) == 1 then redis.call('HINCRBY', KEYS[1], 'pending', 1) end
    return 0
  end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], 2592000)
end
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if #ARGV >= 5 then redis.call('EXPIRE', KEYS[3], 2592000) end
return 1
"""

# Release a held service: drop the hold, hand its ids back in batches (each reserving a unit of ``pending``)
# and move a campaign that waited only for it on: ``paused`` -> ``sending``, and on to ``done`` when nothing
# is left at all. KEYS: campaign, its holds, its held list for the service, its reserved batch ids, its
# paused-campaign held list. ARGV: service, batch id prefix, batch size, now.
# Returns {hold existed, batches, ids} (no ids for a campaign that is no longer active).
RELEASE_SERVICE = (
    STATE_FUNCTIONS
    + f"""
local had = redis.call('HDEL', KEYS[2], ARGV[1])
local sids = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
local state = redis.call('HGET', KEYS[1], 'state')
local active = state == 'paused' or state == 'sending' or state == 'planning'
local batches = 0
if not active then return {{had, 0, {{}}}} end
if #sids > 0 then
  if state == '{PAUSED}' then
    move(KEYS[1], '{SENDING}', ARGV[4], nil)
    redis.call('HSET', KEYS[1], 'reason', '')
  end
  batches = math.ceil(#sids / tonumber(ARGV[3]))
  for b = 0, batches - 1 do
    if redis.call('SADD', KEYS[4], ARGV[2] .. b) == 1 then redis.call('HINCRBY', KEYS[1], 'pending', 1) end
  end
elseif state == '{PAUSED}' and redis.call('HLEN', KEYS[2]) == 0
    and tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') <= 0
    and redis.call('EXISTS', KEYS[5]) == 0 then
  move(KEYS[1], '{SENDING}', ARGV[4], nil)
  redis.call('HSET', KEYS[1], 'reason', '')
  local moved = move(KEYS[1], '{DONE}', ARGV[4], nil)
  if moved and FINAL[moved] then redis.call('HSETNX', KEYS[1], 'finished', ARGV[4]) end
end
return {{had, batches, sids}}
"""
)

# Take a sample of the messages a campaign holds back from a push service, for its breaker's half-open
# try (notifier.breakers.Probe): only while the guard (the breaker's probe as the caller read it) is
# unchanged and the held list still starts with the sample's ids. Takes them off the held list, reserves
# the sample's batch (a unit of ``pending``), writes the new guard, and moves a campaign that waited only
# for held services from ``paused`` back to ``sending`` (the batch's finish pauses it again if need be).
# KEYS: campaign, its held list for the service, its reserved batch ids, the guard hash. ARGV: guard field,
# guard value as read, new guard value, batch id, reason while sampling, now, the ids. Returns 1 when taken.
TAKE_SAMPLE = (
    STATE_FUNCTIONS
    + f"""
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
local n = #ARGV - 6
if n < 1 then return 0 end
local head = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #head ~= n then return 0 end
for i = 1, n do if head[i] ~= ARGV[i + 6] then return 0 end end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= '{PAUSED}' and state ~= '{SENDING}' then return 0 end
redis.call('LTRIM', KEYS[2], n, -1)
if redis.call('SADD', KEYS[3], ARGV[4]) == 1 then redis.call('HINCRBY', KEYS[1], 'pending', 1) end
if state == '{PAUSED}' and move(KEYS[1], '{SENDING}', ARGV[6], nil) == 'OK' then
  redis.call('HSET', KEYS[1], 'reason', ARGV[5])
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
return 1
"""
)

# Send a campaign again to readers whose push service's gone answers were held for review and then
# restored (the service was wrong): each reader at most once (``resent`` set), their ``gone`` counts
# taken back (campaign, by service, by browser: they are answered again), the batches reserved, and a
# ``done`` campaign re-opened (``sending``) until they are answered. KEYS: campaign, resent set, reserved
# batch ids, outcomes by service, outcomes by browser. ARGV: batch id prefix, batch size, now, reason,
# then (sid, service field, browser field) triples. Returns the ids to send now.
RESEND = (
    STATE_FUNCTIONS
    + f"""
local fresh = {{}}
for i = 5, #ARGV, 3 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    fresh[#fresh + 1] = ARGV[i]
    redis.call('HINCRBY', KEYS[4], ARGV[i + 1], -1)
    redis.call('HINCRBY', KEYS[5], ARGV[i + 2], -1)
  end
end
if #fresh == 0 then return fresh end
redis.call('EXPIRE', KEYS[2], 2592000)
redis.call('HINCRBY', KEYS[1], 'gone', -#fresh)
local size = tonumber(ARGV[2])
for b = 0, math.ceil(#fresh / size) - 1 do
  if redis.call('SADD', KEYS[3], ARGV[1] .. b) == 1 then redis.call('HINCRBY', KEYS[1], 'pending', 1) end
end
if move(KEYS[1], '{SENDING}', ARGV[3], {{{DONE} = true}}) == 'OK' then
  redis.call('HSET', KEYS[1], 'reason', ARGV[4])
end
return fresh
"""
)
