"""A shared priority queue in Redis whose requests are leased to workers, not handed over.

:class:`LeasedPriorityQueue`: :meth:`pop` leases requests, :meth:`ack` deletes a finished one,
:meth:`renew` extends a live worker's leases and :meth:`requeue_expired` puts expired leases back,
each one atomic Lua script; an undecodable payload goes to ``dead``, never lost or retried forever.

Design notes: docs/framework-design.md#queue.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from scrapy import Request, Spider
from scrapy.utils.request import request_from_dict
from scrapy_redis.queue import Base

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.admission import RefusedRequest, RequestPolicy
from scrapy_sharedcrawl.cluster_rate import host_rate
from scrapy_sharedcrawl.defaults import SETTINGS
from scrapy_sharedcrawl.dupefilter import MALFORMED_FILL, DupeCheck
from scrapy_sharedcrawl.host_names import queue_host
from scrapy_sharedcrawl.keys import BUCKET, LUA_LEASED, LUA_QUEUED, QueueKeys
from scrapy_sharedcrawl.reading import whole
from scrapy_sharedcrawl.script_pipeline import ScriptCall, ScriptPipeline

#: Priorities are clamped to ±MAX_PRIORITY so that a ready score -priority·2³² + seq stays exact.
MAX_PRIORITY = 2**20 - 1
_SEQ_SPAN = 2**32
#: Expired leases returned to the queue per script call (bounds one call's work).
REQUEUE_BATCH = 200
#: Hosts moved from ``wait`` to ``ready`` per pop at most (bounds one call's work).
WAKE_BATCH = 200
#: Hosts a pop may look at beyond the requests it asks for (paused ones it moves to ``wait``).
EXTRA_VISITS = 32
#: Bucket entries a pop looks at, at most (those it doesn't hand out join their host's own queue).
BUCKET_SCAN = 256
#: The layout marker, stored at the queue's base key (``<base>:queue``); see :mod:`.keys`.
#: (Quoted in the scripts as a Lua string: no ' or \ in it.)
LAYOUT = (
    "hosts/2: requests in a LIST per host and priority, hosts in ready/wait, payloads with changes to the "
    "spider defaults (m+, s); a worker of an earlier release cannot read them: upgrade it"
)
#: The marker of the release before: the same keys, its payloads whole (this release reads them). A worker
#: of this release replaces it at open, so a worker of that release started afterwards refuses the queue
#: (it would read a seed's ``"m+"`` and ``"s"`` as the spider's defaults and miss their changes).
PREVIOUS_LAYOUT = (
    "hosts/1: requests in a LIST per host and priority, hosts in ready/wait; a worker of the release "
    "before it (ZSET queue) cannot use this queue: upgrade it"
)
#: Members of a previous release's ZSET queue moved per migration call.
MIGRATE_BATCH = 1000
#: The start of a payload whose host the pop script reads (its ``member_host``, the same pattern).
_BUCKET_URL = re.compile(rb'\{"u":"[A-Za-z][A-Za-z0-9+.\-]*://([^/:?#"]*)')

DEFAULT_KEY: str = SETTINGS["SCHEDULER_QUEUE_KEY"]

#: Lua shared by the scripts. KEYS: 1 marker (``<base>:queue``), 2 payloads (a previous release's),
#: 3 holders, 4 leased, 5 requeued, 6 count, 7 ready, 8 wait, 9 hosts, 10 seq, 11 unchecked (see
#: :class:`.keys.QueueKeys`). A queued request is "<id> <payload>" in the LIST of its host and priority;
#: a leased one is id → "<priority> <host> <payload>" in the HASH of its worker, whose leases share one
#: deadline in ``holders``. A worker is in ``holders`` while its hash exists (every script that empties
#: one takes it out), so nobody holds a lease when ``holders`` is empty, whatever the counter says.
_LUA_COMMON = r"""
local SPAN = 4294967296
local BASE = string.sub(KEYS[1], 1, -6)
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(x) return string.format('%.17g', x) end
local function list_key(p, h) return BASE .. 'q:' .. p .. ':' .. h end
local BUCKET = '*'
-- ZSET: host → when its turn ends, for hosts whose next time is kept without requests of their own
local RECENT = BASE .. 'recent'
-- the host of a bucket entry: the push put it in the bucket only if this reads it from the payload
local function member_host(member)
  return string.match(member, '^%S+ {"u":"%a[%w+.%-]*://([^/:?#"]*)') or ''
end
local function lease_key(worker) return BASE .. 'lease:' .. worker end
-- "<priority> <host>" of a previous release's owner entry; its own predecessor's "<score>" gives host ''
local function place_of(owner)
  local place = string.match(owner, '^([^|]*)') or ''
  local p, h = string.match(place, '^(%-?%d+) (.*)$')
  if p then return p, h end
  local score = tonumber(place) or 0
  return string.format('%d', -math.floor(score / SPAN)), ''
end
local function host_state(h)
  local state = redis.call('HGET', KEYS[9], h)
  if not state then return nil end
  local next_ms, levels = nil, {}
  for word in string.gmatch(state, '%S+') do
    if next_ms == nil then next_ms = tonumber(word) or 0 else levels[#levels + 1] = word end
  end
  return next_ms or 0, levels
end
local function save_host(h, next_ms, levels)
  if #levels == 0 then
    redis.call('HDEL', KEYS[9], h)
    redis.call('ZREM', KEYS[7], h)
    redis.call('ZREM', KEYS[8], h)
  else
    redis.call('HSET', KEYS[9], h, string.format('%d', next_ms) .. ' ' .. table.concat(levels, ' '))
  end
end
local function next_seq() return redis.call('INCR', KEYS[10]) % SPAN end
local function make_ready(h, levels)
  redis.call('ZADD', KEYS[7], fmt(-tonumber(levels[1]) * SPAN + next_seq()), h)
end
-- a host's next time kept without requests queued (its turn, for the requests still in the bucket)
local function remember(h, next_ms)
  redis.call('HSET', KEYS[9], h, string.format('%d', next_ms))
  redis.call('ZADD', RECENT, next_ms, h)
end
-- put member in host h's LIST at priority p: at the tail, or the head (a request back from a lease)
local function place(h, p, member, front)
  redis.call(front and 'LPUSH' or 'RPUSH', list_key(p, h), member)
  local next_ms, levels = host_state(h)
  if not next_ms or #levels == 0 then  -- new, or only its turn remembered: it waits for that
    save_host(h, next_ms or 0, {p})
    if next_ms and next_ms > server_ms() then
      redis.call('ZADD', KEYS[8], next_ms, h)
    else
      make_ready(h, {p})
    end
    return
  end
  local pn = tonumber(p)
  for i = 1, #levels do
    local q = tonumber(levels[i])
    if q == pn then return end
    if q < pn then
      table.insert(levels, i, p)
      save_host(h, next_ms, levels)
      local score = i == 1 and redis.call('ZSCORE', KEYS[7], h)
      if score then  -- a better priority: the host moves up in ready, keeping its place among equals
        redis.call('ZADD', KEYS[7], fmt(-pn * SPAN + (tonumber(score) + q * SPAN)), h)
      end
      return
    end
  end
  levels[#levels + 1] = p
  save_host(h, next_ms, levels)
end
-- a bucket entry whose host can't send it now starts the host's own queue: in wait until due (its
-- rate, a pause), or, due nil, in ready behind the others (one request a visit, as its turn allows)
local function hold(h, p, member, next_ms, due)
  redis.call('RPUSH', list_key(p, h), member)
  save_host(h, next_ms, {p})
  if due then redis.call('ZADD', KEYS[8], due, h) else make_ready(h, {p}) end
end
-- queue member at priority p of host h (the bucket, for most pushes)
local function enqueue(h, p, member, front)
  place(h, p, member, front)
  redis.call('INCR', KEYS[6])
end
-- a request left host h's LIST at priority p some other way than a pop (a late ack): tidy up
local function removed(h, p)
  redis.call('DECR', KEYS[6])
  if redis.call('EXISTS', list_key(p, h)) == 1 then return end
  local next_ms, levels = host_state(h)
  if not next_ms then return end
  for i = 1, #levels do
    if levels[i] == p then table.remove(levels, i) break end
  end
  local was_best = redis.call('ZSCORE', KEYS[7], h)
  save_host(h, next_ms, levels)
  if #levels > 0 and was_best then make_ready(h, levels) end
end
-- a leased request back to the head of its host's list at its priority; a late ack still finds it
local function put_back(id, p, h, payload)
  local member = id .. ' ' .. payload
  enqueue(h, p, member, true)
  redis.call('HSET', KEYS[5], id, p .. ' ' .. h .. ' ' .. member)
end
-- priority, host and payload of a lease entry; an entry no script wrote goes back to the '' host
-- whole (a pop then finds it is no request, and buries it)
local function parse_lease(value)
  local p, h, payload = string.match(value, '^(%-?%d+) (%S*) (.*)$')
  local n = tonumber(p)
  if not n or math.abs(n) > @MAX_PRIORITY then return '0', '', value end
  return string.format('%d', n), h, payload
end
-- the lease of id that worker's hash key holds, removed: priority, host, payload (nil: none)
local function take_lease(key, id)
  local value = redis.call('HGET', key, id)
  if not value then return nil end
  redis.call('HDEL', key, id)
  return parse_lease(value)
end
-- the lease counter moves by n; one a stranger made unreadable is counted again, holder by holder
local function add_leased(n)
  if n == 0 then return end
  local v = redis.pcall('INCRBY', KEYS[4], n)
  if type(v) ~= 'number' or v < 0 then
    local sum = 0
    for _, w in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
      sum = sum + redis.call('HLEN', lease_key(w))
    end
    redis.call('SET', KEYS[4], sum)
  end
end
-- a worker whose hash emptied holds nothing: out of the holders (none left: no counter either)
local function forget_if_empty(worker)
  if redis.call('EXISTS', lease_key(worker)) == 1 then return end
  redis.call('ZREM', KEYS[3], worker)
  if redis.call('ZCARD', KEYS[3]) == 0 then redis.call('DEL', KEYS[4]) end
end
-- For an upgrade made while a previous release's leases were out (ZSET leases, HASHes owners and
-- payloads; written no more): put them back when they expire, as that release did.
local function requeue_previous(now, limit)
  local leases, owners = BASE .. 'leases', BASE .. 'owners'
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    local payload = redis.call('HGET', KEYS[2], id)
    local p, h = place_of(redis.call('HGET', owners, id) or '0')
    redis.call('ZREM', leases, id)
    redis.call('HDEL', owners, id)
    redis.call('HDEL', KEYS[2], id)
    if payload then put_back(id, p, h, payload) end
  end
  return #expired
end
-- put back up to limit leases of the workers whose deadline passed, emptying hash after hash
local function requeue_expired(now, limit)
  local n = requeue_previous(now, limit)
  if n >= limit then return n end
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit - n)) do
    local key, want = lease_key(w), limit - n
    local flat
    if redis.call('HLEN', key) <= want then
      flat = redis.call('HGETALL', key)
    else
      flat = redis.call('HRANDFIELD', key, want, 'WITHVALUES')
    end
    for i = 1, #flat, 2 do
      local p, h, payload = parse_lease(flat[i + 1])
      redis.call('HDEL', key, flat[i])
      put_back(flat[i], p, h, payload)
    end
    n = n + #flat / 2
    add_leased(-#flat / 2)
    forget_if_empty(w)
    if n >= limit then break end
  end
  return n
end
""".replace("@MAX_PRIORITY", str(MAX_PRIORITY))

#: Set the layout marker unless the key holds something (a crawl deleted with it, then pushed to again).
_LUA_MARK = f"""
redis.call('SET', KEYS[1], '{LAYOUT}', 'NX')
"""
#: Queue one entry unless the dupefilter has seen it: ``push_entry(id, priority, host, payload, seen,
#: checked)`` → status: 1 pushed, 0 seen before, 2 already queued or leased unchecked (a push retried
#: after a lost reply; a checked one is "seen before" then). Unchecked: no dupefilter check, or one a
#: malformed filter could not make (:data:`.dupefilter.MALFORMED_FILL`).
_LUA_PUSH_ENTRY = r"""
local function push_entry(id, p, h, payload, seen, checked)
  if seen then return 0 end
  if not checked then
    if redis.call('SADD', KEYS[11], id) == 0 then return 2 end
  end
  enqueue(h, p, id .. ' ' .. payload, false)
  return 1
end
"""
#: Push one request. KEYS: the core keys, then the dupefilter's. ARGV: 1 id, 2 priority, 3 host,
#: 4 payload, 5 number of dupefilter args (0: no check), 6… the dupefilter's args. → {status, fill}.
_LUA_PUSH = (
    _LUA_COMMON
    + _LUA_PUSH_ENTRY
    + _LUA_MARK
    + """
local fill, seen = 0, false
local nargs = tonumber(ARGV[5])
if nargs > 0 then
  local dkeys, dargs = {}, {}
  for i = 12, #KEYS do dkeys[#dkeys + 1] = KEYS[i] end
  for i = 6, 5 + nargs do dargs[#dargs + 1] = ARGV[i] end
  seen, fill = check_and_add(dkeys, dargs)
end
return {push_entry(ARGV[1], ARGV[2], ARGV[3], ARGV[4], seen, nargs > 0 and fill < @MALFORMED), fill}
""".replace("@MALFORMED", str(MALFORMED_FILL))
)
#: Push a batch, each entry as :data:`_LUA_PUSH` pushes one: one script call for the batch, so the
#: queue's keys travel once and redis-py packs one command, not one per request. KEYS: the core keys,
#: then the dupefilter keys of the batch (each once). ARGV, per entry: id, priority, host, payload,
#: number of dupefilter keys k (0: no check), k indexes into KEYS after the core keys, number of
#: dupefilter args n, n args. → {status1, fill1, status2, fill2, …}.
_LUA_PUSH_BATCH = (
    _LUA_COMMON
    + _LUA_PUSH_ENTRY
    + _LUA_MARK
    + """
local result = {}
local i = 1
while i <= #ARGV do
  local id, priority, host, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local nkeys = tonumber(ARGV[i + 4])
  i = i + 5
  local dkeys, dargs = {}, {}
  for j = 0, nkeys - 1 do dkeys[#dkeys + 1] = KEYS[11 + tonumber(ARGV[i + j])] end
  i = i + nkeys
  local nargs = tonumber(ARGV[i])
  i = i + 1
  for j = 0, nargs - 1 do dargs[#dargs + 1] = ARGV[i + j] end
  i = i + nargs
  local fill, seen = 0, false
  if nkeys > 0 then seen, fill = check_and_add(dkeys, dargs) end
  result[#result + 1] = push_entry(id, priority, host, payload, seen, nkeys > 0 and fill < @MALFORMED)
  result[#result + 1] = fill
end
return result
""".replace("@MALFORMED", str(MALFORMED_FILL))
)
#: A push script without a dupefilter.
_LUA_NO_CHECK = """
local function check_and_add(keys, args) return false, 0 end
"""

#: Lease up to ARGV[3] requests to worker ARGV[1] for ARGV[2] ms, after requeueing expired leases
#: (at most ARGV[4]) and moving the hosts whose time has come from ``wait`` to ``ready``. Hosts are
#: taken from ``ready`` best first; a paced host (one request every ARGV[5] ms, or its own interval,
#: mirrored by the cluster rate limiter in its hash ARGV[7] .. host .. ARGV[8], whose ``tat`` and
#: ``pause_until`` count too: a paused host waits for the end of its pause) gives one request a visit
#: while what it was given reaches less than ARGV[6] ms ahead, then waits until half of that is left;
#: a host without a rate gives what is asked and stays ready. → {requeued, remaining,
#: missing, ms until the next waiting host is due (-1: none waits), id1, payload1, …}: missing = queued
#: members without a payload (a member that is only an id is an older release's layout, its payload in
#: the hash: read there; without one, only eviction or a stranger).
_LUA_POP = (
    _LUA_COMMON
    + """
local now = server_ms()
local result = {requeue_expired(now, tonumber(ARGV[4])), 0, 0, -1}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now, 'LIMIT', 0, @WAKE_BATCH)) do
  redis.call('ZREM', KEYS[8], h)
  local next_ms, levels = host_state(h)
  if next_ms and #levels > 0 then make_ready(h, levels) end
end
for _, h in ipairs(redis.call('ZRANGEBYSCORE', RECENT, '-inf', now, 'LIMIT', 0, @WAKE_BATCH)) do
  redis.call('ZREM', RECENT, h)  -- its turn is over: a host without requests of its own is forgotten
  local next_ms, levels = host_state(h)
  if next_ms and #levels == 0 then redis.call('HDEL', KEYS[9], h) end
end
local want, default_interval, horizon = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local taken = {}
local visits, scanned = 0, 0
-- host h's interval (ms), the limiter's next time for it and the end of its pause
local function limits(h)
  local interval, tat, pause = default_interval, 0, 0
  if ARGV[7] ~= '' then
    local limiter = redis.call('HMGET', ARGV[7] .. h .. ARGV[8], 'tat', 'pause_until', 'iv')
    tat = (tonumber(limiter[1] or '0') or 0) / 1000
    pause = (tonumber(limiter[2] or '0') or 0) / 1000
    interval = math.max(interval, (tonumber(limiter[3] or '0') or 0) / 1000)
  end
  return interval, tat, pause
end
-- host h's turn: its interval, when its next request may go, and until when it must wait (nil: it may
-- be handed out now, ahead by up to the horizon); a paused host waits out its pause
local function turn(h, next_ms)
  local interval, tat, pause = limits(h)
  local start = math.max(next_ms, tat, now)
  if pause > now then return interval, start, math.ceil(pause) end
  if interval > 0 and start - now >= horizon then return interval, start, math.ceil(start - horizon / 2) end
  return interval, start, nil
end
local function take(member, p, h)
  taken[#taken + 1] = member
  taken[#taken + 1] = p .. ' ' .. h
end
-- the bucket's oldest entries at its best priority: one of a host that may send now is handed out
-- (its turn kept, if it is paced); one of a host with a queue of its own joins it (arrival order within
-- a host holds: everything enters a host's queue through the bucket); one of a host whose turn is not
-- now starts the host's own queue, in ready (its turn within the horizon: it gives one request a
-- visit, as a host with a queue does) or in wait (later, or paused)
local function visit_bucket(levels)
  local p = levels[1]
  local key = list_key(p, BUCKET)
  local handed = 0
  local until_taken = math.min(2 * want, #taken + 2 * math.ceil(want / 2))  -- hosts with a queue get the rest
  while #taken < until_taken and scanned < @BUCKET_SCAN do
    local member = redis.call('LPOP', key)
    if not member then break end
    scanned = scanned + 1
    local h = member_host(member)
    local next_ms, own = host_state(h)
    if next_ms and #own > 0 then
      place(h, p, member, false)
    else
      local interval, start, due = turn(h, next_ms or 0)
      if due then
        hold(h, p, member, next_ms or 0, due)
      elseif interval > 0 and start > now then
        hold(h, p, member, next_ms or 0, nil)  -- a pop mixes hosts: one of its requests at a time
      else
        take(member, p, h)
        handed = handed + 1
        if interval > 0 then remember(h, start + interval) end
      end
    end
  end
  redis.call('DECRBY', KEYS[6], handed)
  if redis.call('EXISTS', key) == 0 then table.remove(levels, 1) end
  save_host(BUCKET, 0, levels)
  if #levels > 0 then make_ready(BUCKET, levels) end
end
-- the bucket first among its priority at each pop: new hosts start while the hosts with a queue run
local bucket_next, bucket_levels = host_state(BUCKET)
if bucket_next and #bucket_levels > 0 then
  redis.call('ZADD', KEYS[7], 'XX', fmt(-tonumber(bucket_levels[1]) * SPAN), BUCKET)
end
while #taken < 2 * want and visits < want + @EXTRA_VISITS do
  local head = redis.call('ZPOPMIN', KEYS[7])
  if #head == 0 then break end
  visits = visits + 1
  local h = head[1]
  local next_ms, levels = host_state(h)
  if next_ms and h == BUCKET then
    visit_bucket(levels)
  elseif next_ms then
    local interval, start, due = turn(h, next_ms)
    if due then
      redis.call('ZADD', KEYS[8], due, h)
    else
      -- a paced host gives one request a visit and goes behind the hosts of its priority while it has
      -- room within the horizon: a pop's requests (and a worker's downloader) mix the ready hosts
      local quota = interval > 0 and 1 or want - #taken / 2
      local n = 0
      while n < quota and #levels > 0 do
        local p = levels[1]
        local key = list_key(p, h)
        local got = redis.call('LPOP', key, quota - n) or {}
        for _, member in ipairs(got) do take(member, p, h) end
        n = n + #got
        if redis.call('EXISTS', key) == 0 then table.remove(levels, 1) end
      end
      redis.call('DECRBY', KEYS[6], n)
      if interval > 0 then next_ms = start + n * interval end
      save_host(h, next_ms, levels)
      if #levels > 0 then
        if interval > 0 and next_ms - now >= horizon then
          redis.call('ZADD', KEYS[8], math.ceil(next_ms - horizon / 2), h)
        else
          make_ready(h, levels)
        end
      elseif interval > 0 then
        remember(h, next_ms)  -- its turn holds for what the bucket still has of it
      end
    end
  end
end
local requeued = redis.call('EXISTS', KEYS[5]) == 1
local mine, leased = lease_key(ARGV[1]), 0
for i = 1, #taken, 2 do
  local member = taken[i]
  local space = string.find(member, ' ', 1, true)
  local id, payload
  if space then
    id, payload = string.sub(member, 1, space - 1), string.sub(member, space + 1)
  else  -- queued by an older release: the member is the id, its payload in the hash
    id, payload = member, redis.call('HGET', KEYS[2], member)
    if payload then redis.call('HDEL', KEYS[2], member) end
  end
  if payload then
    if requeued and redis.call('HEXISTS', KEYS[5], id) == 1 then  -- its earlier holder's ack: stale
      redis.call('HSET', KEYS[5], id, '@' .. ARGV[1])
    end
    leased = leased + redis.call('HSET', mine, id, taken[i + 1] .. ' ' .. payload)
    result[#result + 1] = id
    result[#result + 1] = payload
  else
    result[3] = result[3] + 1
  end
end
if leased > 0 then  -- an empty pop leaves the deadline alone: a worker holding only leases it does
  -- not know of (a lost reply) lets them expire once it holds nothing else
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
  add_leased(leased)
end
result[2] = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
if redis.call('ZCARD', KEYS[7]) > 0 then
  result[4] = 0
else
  local first = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  if #first > 0 then result[4] = math.max(0, tonumber(first[2]) - now) end
end
return result
""".replace("@WAKE_BATCH", str(WAKE_BATCH))
    .replace("@EXTRA_VISITS", str(EXTRA_VISITS))
    .replace("@BUCKET_SCAN", str(BUCKET_SCAN))
)

#: Requeue leases expired by ARGV[1] ms (server time when empty), at most ARGV[2]. → count.
_LUA_REQUEUE_ONLY = (
    _LUA_COMMON
    + """
local now = tonumber(ARGV[1]) or server_ms()
return requeue_expired(now, tonumber(ARGV[2]))
"""
)

#: Worker ARGV[1] is done with the ARGV[2] ids ARGV[3…]. → {acked, late, stale}: late = the lease had
#: expired and the request was back in the queue (removed now: it is done); stale = another worker
#: leased it again since (gone: done by another, counts as none). Then, per id, its outputs: a count,
#: and that many (index into KEYS after the core keys, value) pairs, RPUSHed in the same step when the
#: id's acknowledgement counts (acked or late).
_LUA_ACK = (
    _LUA_COMMON
    + """
local acked, late, stale = 0, 0, 0
local n = tonumber(ARGV[2])
local at = 3 + n
local mine = lease_key(ARGV[1])
local requeued = redis.call('EXISTS', KEYS[5]) == 1
local unchecked = redis.call('EXISTS', KEYS[11]) == 1
for i = 1, n do
  local id = ARGV[2 + i]
  local done = false
  if redis.call('HDEL', mine, id) == 1 then
    if requeued then redis.call('HDEL', KEYS[5], id) end
    acked = acked + 1
    done = true
  elseif requeued then
    local entry = redis.call('HGET', KEYS[5], id)
    local holder = entry and string.match(entry, '^@(.*)$')
    if holder and redis.call('HEXISTS', lease_key(holder), id) == 1 then
      stale = stale + 1
    elseif entry then
      local p, h, member = string.match(entry, '^(%-?%d+) (%S*) (.*)$')
      if member and redis.call('LREM', list_key(p, h), 1, member) == 1 then
        removed(h, p)
        late = late + 1
        done = true
      end
      redis.call('HDEL', KEYS[5], id)
    end
  end
  if done and unchecked then redis.call('SREM', KEYS[11], id) end
  local outputs = tonumber(ARGV[at])
  at = at + 1
  for j = 1, outputs do
    if done then
      redis.call('RPUSH', KEYS[11 + tonumber(ARGV[at])], ARGV[at + 1])
    end
    at = at + 2
  end
end
if acked > 0 then
  add_leased(-acked)
  forget_if_empty(ARGV[1])
end
return {acked, late, stale}
"""
)

#: Extend worker ARGV[1]'s leases to now + ARGV[2] ms: one deadline for all it holds, set only if it
#: still holds one of the ids ARGV[3…] (no write per id). → the ids it no longer holds.
_LUA_RENEW = (
    _LUA_COMMON
    + """
local mine = lease_key(ARGV[1])
local lost = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', mine, ARGV[i]) == 0 then lost[#lost + 1] = ARGV[i] end
end
if #lost < #ARGV - 2 then redis.call('ZADD', KEYS[3], server_ms() + tonumber(ARGV[2]), ARGV[1]) end
return lost
"""
)

#: Worker ARGV[1] gives ids ARGV[2…] back unprocessed (shutting down): queue them again now.
_LUA_RELEASE = (
    _LUA_COMMON
    + """
local mine = lease_key(ARGV[1])
local released = 0
for i = 2, #ARGV do
  local p, h, payload = take_lease(mine, ARGV[i])
  if p then
    put_back(ARGV[i], p, h, payload)
    released = released + 1
  end
end
add_leased(-released)
forget_if_empty(ARGV[1])
return released
"""
)

#: Move request ARGV[2], leased to worker ARGV[1], whose payload can't be used to the dead-letter hash
#: with the reason ARGV[3]. KEYS: the core keys, then dead. → 1 if it was leased to that worker.
_LUA_BURY = (
    _LUA_COMMON
    + """
local id = ARGV[2]
local p, h, payload = take_lease(lease_key(ARGV[1]), id)
if not p then return 0 end
redis.call('HSET', KEYS[12], id, ARGV[3] .. '\\n' .. string.sub(payload, 1, 4096))
redis.call('SREM', KEYS[11], id)
redis.call('HDEL', KEYS[5], id)
add_leased(-1)
forget_if_empty(ARGV[1])
return 1
"""
)

#: → {queued, leased}, as the finish check counts them.
_LUA_PENDING = (
    LUA_QUEUED
    + LUA_LEASED
    + """
return {queued_count(KEYS[6]), leased_count(KEYS[4])}
"""
)

#: Delete the queue's keys if nothing is queued or leased. → 1 if deleted.
_LUA_CLEAR_IF_IDLE = (
    LUA_QUEUED
    + LUA_LEASED
    + """
if queued_count(KEYS[6]) > 0 or leased_count(KEYS[4]) > 0 then return 0 end
redis.call('DEL', unpack(KEYS))
redis.call('DEL', string.sub(KEYS[1], 1, -6) .. 'recent')  -- the hosts' turns (see keys.QueueKeys.recent)
return 1
"""
)

#: Set the layout marker, migrating a previous release's ZSET queue first. KEYS: the core keys.
#: ARGV: triples (member, priority, host) of the ZSET's first members, the hosts worked out by the
#: caller (the payload's URL), in the ZSET's order. Each member still there is moved to the tail of
#: its host's LIST (the ZSET's order kept within a host and priority); a requeued entry of its id
#: is rewritten to the new form. Once the ZSET is empty the marker replaces it. The marker of the
#: release before (:data:`PREVIOUS_LAYOUT`: the same keys, whole payloads) is replaced at once.
#: → {layout marker (nil while a ZSET is left), members moved, ZSET members left}.
_LUA_MIGRATE = (
    _LUA_COMMON
    + """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then
  redis.call('SET', KEYS[1], '@LAYOUT')
  return {redis.call('GET', KEYS[1]), 0, 0}
elseif kind == 'string' and redis.call('GET', KEYS[1]) == '@PREVIOUS' then
  redis.call('SET', KEYS[1], '@LAYOUT')
  return {redis.call('GET', KEYS[1]), 0, 0}
elseif kind ~= 'zset' then
  return {redis.call('GET', KEYS[1]), 0, 0}
end
local moved = 0
for i = 1, #ARGV, 3 do
  local member, p, h = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZREM', KEYS[1], member) == 1 then
    enqueue(h, p, member, false)
    local space = string.find(member, ' ', 1, true)
    local id = space and string.sub(member, 1, space - 1) or member
    if redis.call('HEXISTS', KEYS[5], id) == 1 then
      redis.call('HSET', KEYS[5], id, p .. ' ' .. h .. ' ' .. member)
    end
    moved = moved + 1
  end
end
local left = redis.call('ZCARD', KEYS[1])
if left > 0 then return {false, moved, left} end
redis.call('SET', KEYS[1], '@LAYOUT')
return {redis.call('GET', KEYS[1]), moved, 0}
""".replace("@LAYOUT", LAYOUT).replace("@PREVIOUS", PREVIOUS_LAYOUT)
)


class LayoutMismatch(RuntimeError):
    """The queue's base key holds something no release of this queue wrote there."""


@dataclass(frozen=True)
class Encoded:
    """A request ready to push: its id, priority, JSON payload and host (kept to retry a push as is)."""

    request_id: str
    priority: int
    payload: bytes
    check: DupeCheck | None = None
    #: The host its requests are paced by (:func:`queue_host`).
    host: str = ""

    @property
    def place(self) -> str:
        """Where the push queues it: the shared bucket (:data:`BUCKET`) when the pop script can read
        its host back from the payload, else the host's own queue (another serializer's payload, a URL
        with user info, an upper-case or escaped host)."""
        found = _BUCKET_URL.match(self.payload)
        return BUCKET if found is not None and found.group(1) == self.host.encode() else self.host


@dataclass
class Popped:
    """What one pop leased: (id, request) pairs, payloads that failed to decode, and leases it requeued."""

    leased: list[tuple[str, Request]] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    requeued: int = 0
    #: Requests left in the queue after this pop (so an empty queue needs no second pop to be known).
    remaining: int = -1
    #: Queued ids this pop found without a payload (evicted: they are lost, and must be said so).
    missing: int = 0
    #: Seconds until a host waiting for its rate or a pause may be handed out (None: none waits).
    next_due: float | None = None


@dataclass(frozen=True)
class AckResult:
    acked: int
    late: int
    stale: int


class LeasedPriorityQueue(Base):
    """Shared priority queue with leases (see the module docstring).

    Extends scrapy-redis's queue base, keeping its constructor, serializer
    hook (``loads``/``dumps`` over the request dict) and request coding, but
    replaces its pickle default with :mod:`.serialization` and its
    pop-and-forget with leases.
    """

    def __init__(
        self,
        server: redis.Redis,
        spider: Spider,
        key: str = DEFAULT_KEY,
        serializer: Any = None,
        fingerprint: Any = None,
        lua_check_and_add: str | None = None,
        host_horizon: float = SETTINGS["SCHEDULER_HOST_HORIZON"],
    ) -> None:
        super().__init__(server, spider, key, serializer=serializer or serialization)
        self._fingerprint = fingerprint
        #: What a request of the shared queue may be (:mod:`.admission`), pushing and popping.
        self.policy = RequestPolicy.for_spider(spider)
        #: What most of the spider's requests share, left out of their payloads (our serializer only).
        self.defaults = serialization.check_defaults(
            getattr(spider, "shared_request_defaults", None), f"spider {spider.name!r}"
        )
        #: Defaults a request can share without a copy (a dict or list default is copied per request).
        self._immutable_defaults = frozenset(key for key, value in self.defaults.items() if _immutable(value))
        named = self.named = QueueKeys(self.key)
        self.keys = named.core
        self.queue_key, self.payloads_key, self.holders_key = named.queue, named.payloads, named.holders
        self.leased_key, self.requeued_key, self.count_key = named.leased, named.requeued, named.count
        self.dead_key = named.dead
        #: The previous release's leases, read (requeued when they expire) and never written.
        self.leases_key, self.owners_key = named.leases, named.owners
        #: Seconds between two requests to a host (0: not paced) unless its limiter says more, and the
        #: limiter's hash of a host as (prefix, suffix) around the host's name (:mod:`.cluster_rate`).
        self.host_interval, self.limiter_key = _pacing(spider)
        #: Seconds of a paced host's requests a pop hands out ahead (``SCHEDULER_HOST_HORIZON``).
        self.host_horizon = host_horizon
        self._layout_ready = False
        self._migrate = server.register_script(_LUA_MIGRATE)
        self._push = server.register_script((lua_check_and_add or _LUA_NO_CHECK) + _LUA_PUSH)
        self._push_batch = server.register_script((lua_check_and_add or _LUA_NO_CHECK) + _LUA_PUSH_BATCH)
        self._pop = server.register_script(_LUA_POP)
        self._requeue = server.register_script(_LUA_REQUEUE_ONLY)
        self._ack = server.register_script(_LUA_ACK)
        self._renew = server.register_script(_LUA_RENEW)
        self._release = server.register_script(_LUA_RELEASE)
        self._bury = server.register_script(_LUA_BURY)
        self._clear_if_idle = server.register_script(_LUA_CLEAR_IF_IDLE)
        self._pending = server.register_script(_LUA_PENDING)
        #: Pushes and pop in one round trip, no SCRIPT EXISTS before each (:mod:`.script_pipeline`).
        self._pipeline = ScriptPipeline(server)
        #: Redis round trips made so far (for the ``scheduler/redis/round_trips`` stat).
        self.round_trips = 0
        #: The shard size the dupefilter reported at the last push (0 when unknown).
        self.last_fill = 0

    def _encode_request(self, request: Request) -> bytes:
        """scrapy-redis's encoding (the serializer's ``dumps`` over the request dict), with the dict built
        by :func:`.serialization.request_to_dict`, which names callbacks without listing the spider, and
        only the meta that travels; raises :class:`~.admission.RefusedRequest` for what the policy refuses."""
        obj = serialization.request_to_dict(request, self.spider)
        obj["meta"] = self.policy.kept_meta(obj.get("meta") or {})
        self.policy.check(obj, url_is_safe=True)  # request.url is as Scrapy made it safe
        if self.serializer is serialization:
            encoded: bytes = serialization.dumps(*serialization.compact(obj, self.defaults))
        else:
            encoded = self.serializer.dumps(obj)
        self.policy.check_size(len(encoded))
        return encoded

    def _decode_request(self, encoded_request: bytes) -> Request:
        """A request from a payload read from Redis: untrusted input, checked by the policy before
        anything is built from it (raises :class:`~.serialization.UnserializableRequest`)."""
        self.policy.check_size(len(encoded_request))  # before parsing it; the host once built
        obj = self.serializer.loads(encoded_request)
        if not isinstance(obj, dict):
            raise serialization.UnserializableRequest("payload: not a request dict")
        if self.serializer is serialization:
            serialization.expand(obj, self.defaults, self._immutable_defaults)
        else:  # another serializer's payloads are whole (the spider's defaults are left out only by ours)
            serialization.fill_defaults(obj, self.defaults, self._immutable_defaults)
        self.policy.check_fields(obj)
        try:
            request = request_from_dict(obj, spider=self.spider)
        except ValueError:
            try:
                Request(obj["url"])  # the URL alone: refused for what it is, as the policy refuses a URL
            except ValueError:
                raise RefusedRequest("url", f"{obj['url'][:100]!r} is not a URL") from None
            raise
        self.policy.check_host(request.url)  # on the URL as the request made it safe, and will fetch it
        return request

    # -- pushing ---------------------------------------------------------------------

    def request_id(self, request: Request) -> str:
        """``request``'s id: its 64-bit fingerprint in URL-safe base64 (11 characters, 5 fewer than hex in
        every queue member), with a random suffix if ``dont_filter``."""
        if self._fingerprint is not None:
            fingerprint: bytes = self._fingerprint(request)
        else:
            from scrapy.utils.request import fingerprint as default_fingerprint

            fingerprint = default_fingerprint(request)
        base = base64.urlsafe_b64encode(fingerprint[:8]).rstrip(b"=").decode()
        return f"{base}~{secrets.token_hex(4)}" if request.dont_filter else base

    def encode(self, request: Request, check: DupeCheck | None = None) -> Encoded:
        """Serialize ``request`` (raises :class:`~.serialization.UnserializableRequest`)."""
        payload: bytes = self._encode_request(request)
        priority = max(-MAX_PRIORITY, min(MAX_PRIORITY, request.priority))
        check = None if request.dont_filter else check
        return Encoded(self.request_id(request), priority, payload, check, queue_host(request.url))

    # -- the layout --------------------------------------------------------------------

    def ensure_layout(self) -> int:
        """Make sure Redis holds this layout: mark an empty queue, or move a previous release's ZSET
        queue into the host queues first (in batches of :data:`MIGRATE_BATCH`, each one atomic script;
        requests an old worker adds meanwhile are moved too). Returns the requests moved. Raises
        :class:`LayoutMismatch` when the marker's key holds anything else."""
        moved = 0
        args: list[Any] = []
        while True:
            self.round_trips += 1
            try:
                marker, count, left = self._migrate(keys=self.keys, args=args)
            except redis.ResponseError as error:
                raise LayoutMismatch(f"queue {self.queue_key}: {error}") from None
            moved += int(count)
            if marker is not None or not int(left):
                break
            self.round_trips += 1
            args = []
            for member, score in self.server.zrange(self.queue_key, 0, MIGRATE_BATCH - 1, withscores=True):
                args += [member, *self._legacy_place(member, score)]
        if _text(marker) != LAYOUT:
            raise LayoutMismatch(
                f"queue {self.queue_key} is marked {_text(marker)[:200]!r}, not this release's layout: "
                "a newer release's workers run this crawl (upgrade this one), or another program wrote it"
            )
        self._layout_ready = True
        return moved

    def _legacy_place(self, member: bytes, score: float) -> tuple[int, str]:
        """(priority, host) of a previous release's ZSET member (score ``-priority·2³² + seq``)."""
        priority = max(-MAX_PRIORITY, min(MAX_PRIORITY, -math.floor(score / _SEQ_SPAN)))
        _, _, payload = member.partition(b" ")
        if not payload:  # an even older member: the id, its payload in the hash
            payload = self.server.hget(self.payloads_key, member) or b""
        try:
            obj = self.serializer.loads(payload)
            url = obj.get("url", obj.get("u")) if isinstance(obj, dict) else None
        except Exception:  # untrusted: any payload that does not read goes to the '' host, then to dead
            url = None
        return priority, queue_host(url) if isinstance(url, str) else ""

    def push(self, request: Request, check: DupeCheck | None = None) -> bool:
        """Queue ``request`` unless ``check`` finds it seen; True if queued (or already there)."""
        return self.push_encoded(self.encode(request, check)) != 0

    def push_encoded(self, entry: Encoded, client: Any = None) -> int:
        """1 queued, 0 seen before (not queued), 2 the id was already queued or leased."""
        self._layout()
        keys, args = self._push_arguments(entry)
        self.round_trips += client is None
        status, fill = self._push(keys=keys, args=args, client=client)
        self.last_fill = int(fill)
        return int(status)

    def push_many(self, entries: Sequence[Encoded]) -> list[tuple[int, int]]:
        """Push several in one round trip; (status, shard fill) per entry, as :meth:`push_encoded`."""
        if not entries:
            return []
        return self.push_and_pop(entries, None)[0]

    def push_and_pop(
        self, entries: Sequence[Encoded], worker_id: str | None, lease_seconds: float = 0, count: int = 1
    ) -> tuple[list[tuple[int, int]], Popped | None]:
        """Push ``entries`` then, if ``worker_id`` is given, lease up to ``count`` requests to it: one
        round trip (a pipeline, not a transaction: each push and the pop stay atomic on their own, and a
        push retried after a lost reply is a no-op). Returns the pushes' (status, fill) and the pop."""
        self._layout()
        calls = [ScriptCall(self._push_batch, *self._batch_arguments(entries))] if entries else []
        if worker_id is not None:
            calls.append(
                ScriptCall(self._pop, self.keys, self._pop_arguments(worker_id, lease_seconds, count))
            )
        self.round_trips += 1
        replies = self._pipeline.execute(calls)
        flat = replies[0] if entries else []
        pushed = [(int(status), int(fill)) for status, fill in zip(flat[::2], flat[1::2], strict=True)]
        if len(pushed) != len(entries):
            raise redis.ResponseError(f"push of {len(entries)} requests answered {len(pushed)} statuses")
        if pushed:
            self.last_fill = max(fill for _, fill in pushed)
        return pushed, self._popped(replies[-1]) if worker_id is not None else None

    def _batch_arguments(self, entries: Sequence[Encoded]) -> tuple[list[Any], list[Any]]:
        """KEYS and ARGV of ``_LUA_PUSH_BATCH`` for ``entries``."""
        keys: list[Any] = list(self.keys)
        index: dict[str, int] = {}
        args: list[Any] = []
        for entry in entries:
            args += [entry.request_id, entry.priority, entry.place, entry.payload]
            if entry.check is None:
                args += [0, 0]
                continue
            args.append(len(entry.check.keys))
            for key in entry.check.keys:
                if key not in index:
                    keys.append(key)
                    index[key] = len(index) + 1
                args.append(index[key])
            args.append(len(entry.check.args))
            args += entry.check.args
        return keys, args

    def _push_arguments(self, entry: Encoded) -> tuple[list[Any], list[Any]]:
        check_keys = list(entry.check.keys) if entry.check else []
        check_args = list(entry.check.args) if entry.check else []
        keys = [*self.keys, *check_keys]
        args = [entry.request_id, entry.priority, entry.place, entry.payload, len(check_args), *check_args]
        return keys, args

    # -- leasing ---------------------------------------------------------------------

    def pop(self, worker_id: str, lease_seconds: float, count: int = 1) -> Popped:
        """Lease up to ``count`` requests to ``worker_id`` (expired leases go back first)."""
        self._layout()
        self.round_trips += 1
        return self._popped(
            self._pop(keys=self.keys, args=self._pop_arguments(worker_id, lease_seconds, count))
        )

    def _layout(self) -> None:
        if not self._layout_ready:
            self.ensure_layout()

    def _pop_arguments(self, worker_id: str, lease_seconds: float, count: int) -> list[Any]:
        prefix, suffix = self.limiter_key
        pacing = [self.host_interval * 1000, _ms(self.host_horizon), prefix, suffix]
        return [worker_id, _ms(lease_seconds), max(1, count), REQUEUE_BATCH, *pacing]

    def _popped(self, reply: list[Any]) -> Popped:
        due = int(reply[3])
        popped = Popped(
            requeued=int(reply[0]),
            remaining=int(reply[1]),
            missing=int(reply[2]),
            next_due=due / 1000 if due >= 0 else None,
        )
        for raw_id, payload in zip(reply[4::2], reply[5::2], strict=True):
            request_id = _text(raw_id)
            try:
                popped.leased.append((request_id, self._decode_request(payload)))
            except RefusedRequest as error:
                popped.undecodable.append((request_id, str(error)[:300]))
            except serialization.UnserializableRequest as error:
                popped.undecodable.append((request_id, f"payload: {error}"[:300]))
            except Exception as error:  # a payload is untrusted input: any failure to rebuild it is its own
                popped.undecodable.append((request_id, f"payload: {type(error).__name__}: {error}"[:300]))
        return popped

    def ack(
        self,
        worker_id: str,
        request_ids: Iterable[str],
        outputs: Mapping[str, Sequence[tuple[str, bytes]]] | None = None,
    ) -> AckResult:
        """``worker_id`` finished these requests: delete them (see ``_LUA_ACK`` for late and stale acks).

        ``outputs`` maps a request id to what its crawl produced for Redis, ``(list key, value)`` pairs:
        each is pushed in the same atomic step as the acknowledgement, and only if this worker's
        acknowledgement counts (acked, or late with the request still unclaimed); a stale one's
        outputs are dropped, since the worker that holds the request now will produce them."""
        ids = list(request_ids)
        if not ids:
            return AckResult(0, 0, 0)
        output_keys: dict[str, int] = {}
        produced: list[Any] = []
        for request_id in ids:
            pairs = (outputs or {}).get(request_id, ())
            produced.append(len(pairs))
            for key, value in pairs:
                produced += [output_keys.setdefault(key, len(output_keys) + 1), value]
        self.round_trips += 1
        acked, late, stale = self._ack(
            keys=[*self.keys, *output_keys], args=[worker_id, len(ids), *ids, *produced]
        )
        return AckResult(int(acked), int(late), int(stale))

    def renew(self, worker_id: str, request_ids: Iterable[str], lease_seconds: float) -> list[str]:
        """Extend ``worker_id``'s leases (all it holds: they share one deadline) if it holds any of these
        ids; returns the ids it no longer holds (requeued)."""
        ids = list(request_ids)
        if not ids:
            return []
        self.round_trips += 1
        lost = self._renew(keys=self.keys, args=[worker_id, _ms(lease_seconds), *ids])
        return [_text(item) for item in lost]

    def requeue_expired(self, now: float | None = None, limit: int = REQUEUE_BATCH) -> int:
        """Queue again the leases whose deadline is before ``now`` (Unix s; None: Redis's clock)."""
        self.round_trips += 1
        return int(self._requeue(keys=self.keys, args=["" if now is None else _ms(now), limit]))

    def release(self, worker_id: str, request_ids: Iterable[str]) -> int:
        """Give unprocessed leases back to the queue now (a worker shutting down)."""
        ids = list(request_ids)
        if not ids:
            return 0
        self.round_trips += 1
        return int(self._release(keys=self.keys, args=[worker_id, *ids]))

    def bury(self, worker_id: str, request_id: str, reason: str) -> bool:
        """Move a request ``worker_id`` leased that can't be decoded out of the way, into the ``dead``
        hash, with the reason; False if that worker does not hold it."""
        self.round_trips += 1
        return bool(self._bury(keys=[*self.keys, self.dead_key], args=[worker_id, request_id, reason]))

    # -- sizes -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Requests waiting in the queue (not leased)."""
        self.round_trips += 1
        return whole(self.server.get(self.count_key) or 0) or 0

    def leased_count(self) -> int:
        """Requests leased to some worker and not yet acknowledged."""
        return self.pending()[1]

    def pending(self) -> tuple[int, int]:
        """(queued, leased) in one round trip."""
        self.round_trips += 1
        queued, leased = self._pending(keys=self.keys)
        return int(queued), int(leased)

    def hosts(self) -> tuple[int, int]:
        """(hosts with a queue of their own that may be handed out now, those waiting for their rate or a
        pause), for status: hosts whose requests are all in the shared bucket are not counted."""
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(self.named.ready)
        pipe.zscore(self.named.ready, BUCKET)
        pipe.zcard(self.named.wait)
        self.round_trips += 1
        ready, bucket, waiting = pipe.execute()
        return int(ready) - (bucket is not None), int(waiting)

    def queued(self) -> list[tuple[str, bytes]]:
        """(id, payload) of every request queued right now, host by host, each host's best priority
        first (for tests and tools: it reads every host's queue)."""
        entries = []
        for host, state in self.server.hscan_iter(self.named.hosts):
            name = _text(host)
            for priority in _text(state).split()[1:]:
                for member in self.server.lrange(self.named.host_queue(int(priority), name), 0, -1):
                    request_id, _, payload = member.partition(b" ")
                    entries.append((_text(request_id), payload))
        self.round_trips += 1
        return entries

    def lease_ids(self) -> list[str]:
        """Ids leased right now, to anyone (for tests and tools: it reads every holder's hash)."""
        previous = [_text(item) for item in self.server.zrange(self.named.leases, 0, -1)]
        self.round_trips += 1
        return [request_id for _, request_id, _ in self.leases()] + previous

    def leases(self) -> list[tuple[str, str, bytes]]:
        """(worker, id, payload) of every lease out right now (for tests and tools: it reads every
        holder's hash; a previous release's leases are left out)."""
        found = []
        for worker in self.held():
            for request_id, value in self.server.hgetall(self.named.lease(worker)).items():
                _, _, place_and_payload = value.partition(b" ")  # "<priority> <host> <payload>"
                found.append((worker, _text(request_id), place_and_payload.partition(b" ")[2]))
            self.round_trips += 1
        return found

    def held(self) -> dict[str, int]:
        """Leases held right now by worker (for tests and tools: one HLEN a holder)."""
        workers = [_text(worker) for worker in self.server.zrange(self.holders_key, 0, -1)]
        pipe = self.server.pipeline(transaction=False)
        for worker in workers:
            pipe.hlen(self.named.lease(worker))
        self.round_trips += 2
        return {worker: int(count) for worker, count in zip(workers, pipe.execute(), strict=True) if count}

    # -- clearing ----------------------------------------------------------------------

    def clear(self) -> None:
        """Delete the queue (every host's), leases (every worker's) and counters (dead letters stay for
        inspection)."""
        self.round_trips += 1
        self.server.delete(*self.storage_keys())

    def storage_keys(self) -> list[str]:
        """Every key the queue keeps requests in: its own, each host's queue and each worker's leases (a
        SCAN: for tools, tests and benches, not the crawl's hot path)."""
        found = []
        for pattern in (":q:*", ":lease:*"):
            match = _glob_escape(self.named.base) + pattern
            found += [_text(key) for key in self.server.scan_iter(match=match, count=1000)]
        self.round_trips += 2 + len(found) // 1000
        return [*self.named.state, *found]

    def clear_if_idle(self) -> bool:
        """Delete everything but dead letters if nothing is queued or leased; True if deleted."""
        self.round_trips += 1
        return bool(self._clear_if_idle(keys=self.keys))


def _pacing(spider: Spider) -> tuple[float, tuple[str, str]]:
    """The crawl's interval between two requests to a host, and its limiter's key around the host."""
    crawler = getattr(spider, "crawler", None)
    settings = getattr(crawler, "settings", None)
    if settings is None:  # a queue used alone (tools, tests): no pacing
        return 0.0, ("", "")
    rate = host_rate(settings)
    template = str(settings.get("CLUSTER_HOST_KEY") or SETTINGS["CLUSTER_HOST_KEY"])
    marker = "\0host\0"
    key = template % {"spider": spider.name, "host": marker}
    prefix, _, suffix = key.partition(marker)
    return (1 / rate if rate > 0 else 0.0), (prefix, suffix)


def _glob_escape(text: str) -> str:
    """``text`` with its glob characters escaped, for SCAN MATCH."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return value is None or isinstance(value, (str, bytes, int, float, bool))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
