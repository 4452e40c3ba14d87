"""A shared priority queue in Redis whose requests are leased to workers, not handed over.

:class:`LeasedPriorityQueue`: :meth:`pop` leases requests, :meth:`ack` deletes a finished one,
:meth:`renew` extends a live worker's leases and :meth:`requeue_expired` puts expired leases back,
each one atomic Lua script; an undecodable payload goes to ``dead``, never lost or retried forever.

Design notes: docs/framework-design.md#queue.
"""

from __future__ import annotations

import base64
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
from scrapy_sharedcrawl.defaults import SETTINGS
from scrapy_sharedcrawl.dupefilter import DupeCheck
from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.script_pipeline import ScriptCall, ScriptPipeline

#: Priorities are clamped to ±MAX_PRIORITY so that score = -priority·2³² + seq stays exact.
MAX_PRIORITY = 2**20 - 1
_SEQ_SPAN = 2**32
#: Expired leases returned to the queue per script call (bounds one call's work).
REQUEUE_BATCH = 200

DEFAULT_KEY: str = SETTINGS["SCHEDULER_QUEUE_KEY"]

#: Lua shared by the scripts. KEYS: 1 queue, 2 payloads, 3 leases, 4 owners, 5 requeued. An owner entry
#: is "<score>|<worker>": the score the request had in the queue, and who holds the lease. A queue
#: member is "<id> <payload>".
_LUA_COMMON = """
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function worker_of(owner)
  return string.match(owner, '|(.*)$')
end
local function score_of(owner)
  return string.format('%.17g', tonumber(string.match(owner, '^([^|]*)')) or 0)
end
local function put_back(id, score)
  local payload = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  if payload then
    local member = id .. ' ' .. payload
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZADD', KEYS[1], score, member)
    redis.call('HSET', KEYS[5], id, member)
  end
end
local function requeue_expired(now, limit)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    local owner = redis.call('HGET', KEYS[4], id)
    put_back(id, owner and score_of(owner) or 0)
  end
  return #expired
end
"""

#: Push one request unless the dupefilter has seen it. KEYS: 1 queue, 2 payloads, 3 seq, 4… the
#: dupefilter's keys. ARGV: 1 id, 2 priority, 3 payload, 4 number of dupefilter args (0: no check),
#: 5… the dupefilter's args. → {status, fill}: 1 pushed, 0 seen before, 2 already queued or leased
#: (a push retried after a lost reply).
_LUA_PUSH = """
local fill = 0
local nargs = tonumber(ARGV[4])
if nargs > 0 then
  local dkeys, dargs = {}, {}
  for i = 4, #KEYS do dkeys[#dkeys + 1] = KEYS[i] end
  for i = 5, 4 + nargs do dargs[#dargs + 1] = ARGV[i] end
  local seen
  seen, fill = check_and_add(dkeys, dargs)
  if seen then return {0, fill} end
end
local member = ARGV[1] .. ' ' .. ARGV[3]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('ZSCORE', KEYS[1], member) then
  return {2, fill}
end
local seq = redis.call('INCR', KEYS[3]) % 4294967296
local score = -tonumber(ARGV[2]) * 4294967296 + seq
redis.call('ZADD', KEYS[1], string.format('%.17g', score), member)
return {1, fill}
"""
#: Push a batch, each entry as :data:`_LUA_PUSH` pushes one: one script call for the batch, so the
#: queue's keys travel once and redis-py packs one command, not one per request. KEYS: 1 queue,
#: 2 payloads, 3 seq, 4… the dupefilter keys of the batch (each once). ARGV, per entry: id, priority,
#: payload, number of dupefilter keys k (0: no check), k indexes into KEYS after the first 3, number
#: of dupefilter args n, n args. → {status1, fill1, status2, fill2, …} (statuses as _LUA_PUSH's).
_LUA_PUSH_BATCH = """
local result = {}
local i = 1
while i <= #ARGV do
  local id, priority, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local nkeys = tonumber(ARGV[i + 3])
  i = i + 4
  local dkeys, dargs = {}, {}
  for j = 0, nkeys - 1 do dkeys[#dkeys + 1] = KEYS[3 + tonumber(ARGV[i + j])] end
  i = i + nkeys
  local nargs = tonumber(ARGV[i])
  i = i + 1
  for j = 0, nargs - 1 do dargs[#dargs + 1] = ARGV[i + j] end
  i = i + nargs
  local status, fill, seen = 1, 0, false
  if nkeys > 0 then seen, fill = check_and_add(dkeys, dargs) end
  if seen then
    status = 0
  else
    local member = id .. ' ' .. payload
    if redis.call('HEXISTS', KEYS[2], id) == 1 or redis.call('ZSCORE', KEYS[1], member) then
      status = 2
    else
      local seq = redis.call('INCR', KEYS[3]) % 4294967296
      local score = -tonumber(priority) * 4294967296 + seq
      redis.call('ZADD', KEYS[1], string.format('%.17g', score), member)
    end
  end
  result[#result + 1] = status
  result[#result + 1] = fill
end
return result
"""
#: A push script without a dupefilter.
_LUA_NO_CHECK = """
local function check_and_add(keys, args) return false, 0 end
"""

#: Lease up to ARGV[3] requests to worker ARGV[1] for ARGV[2] ms, after requeueing expired leases.
#: KEYS: 1 queue, 2 payloads, 3 leases, 4 owners, 5 requeued. → {requeued, remaining, missing, id1,
#: payload1, …}: missing = queue members without a payload (a member that is only an id is the previous
#: release's layout, its payload in the hash: read there; without one, only eviction or a stranger).
_LUA_POP = (
    _LUA_COMMON
    + """
local now = server_ms()
local result = {requeue_expired(now, tonumber(ARGV[4])), 0, 0}
local popped = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[3]))
for i = 1, #popped, 2 do
  local member, score = popped[i], popped[i + 1]
  local space = string.find(member, ' ', 1, true)
  local id, payload
  if space then
    id, payload = string.sub(member, 1, space - 1), string.sub(member, space + 1)
  else  -- queued by the previous release: the member is the id, its payload in the hash
    id, payload = member, redis.call('HGET', KEYS[2], member)
  end
  if payload then
    redis.call('HDEL', KEYS[5], id)
    redis.call('HSET', KEYS[2], id, payload)
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
    redis.call('HSET', KEYS[4], id, score .. '|' .. ARGV[1])
    result[#result + 1] = id
    result[#result + 1] = payload
  else
    result[3] = result[3] + 1
  end
end
result[2] = redis.call('ZCARD', KEYS[1])
return result
"""
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
#: holds it. Then, per id, its outputs: a count, and that many (index into KEYS after the 5 core keys,
#: value) pairs, RPUSHed in the same step when the id's acknowledgement counts (acked or late).
_LUA_ACK = (
    _LUA_COMMON
    + """
local acked, late, stale = 0, 0, 0
local n = tonumber(ARGV[2])
local at = 3 + n
for i = 1, n do
  local id = ARGV[2 + i]
  local done = false
  local owner = redis.call('HGET', KEYS[4], id)
  if owner and worker_of(owner) == ARGV[1] then
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[2], id)
    acked = acked + 1
    done = true
  elseif owner then
    stale = stale + 1
  else
    local member = redis.call('HGET', KEYS[5], id)
    if member and redis.call('ZREM', KEYS[1], member) == 1 then
      late = late + 1
      done = true
    end
    redis.call('HDEL', KEYS[5], id)
  end
  local outputs = tonumber(ARGV[at])
  at = at + 1
  for j = 1, outputs do
    if done then
      redis.call('RPUSH', KEYS[5 + tonumber(ARGV[at])], ARGV[at + 1])
    end
    at = at + 2
  end
end
return {acked, late, stale}
"""
)

#: Extend worker ARGV[1]'s leases ARGV[3…] to now + ARGV[2] ms. → the ids it no longer holds.
_LUA_RENEW = (
    _LUA_COMMON
    + """
local deadline = server_ms() + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[4], ARGV[i])
  if owner and worker_of(owner) == ARGV[1] then
    redis.call('ZADD', KEYS[3], 'XX', deadline, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

#: Worker ARGV[1] gives ids ARGV[2…] back unprocessed (shutting down): queue them again now.
_LUA_RELEASE = (
    _LUA_COMMON
    + """
local released = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local owner = redis.call('HGET', KEYS[4], id)
  if owner and worker_of(owner) == ARGV[1] then
    put_back(id, score_of(owner))
    released = released + 1
  end
end
return released
"""
)

#: Move a leased request whose payload can't be used to the dead-letter hash. KEYS + KEYS[6] = dead.
_LUA_BURY = """
local payload = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if payload then redis.call('HSET', KEYS[6], ARGV[1], ARGV[2] .. '\\n' .. string.sub(payload, 1, 4096)) end
return payload and 1 or 0
"""

#: Delete everything if nothing is queued or leased. → 1 if deleted.
_LUA_CLEAR_IF_IDLE = """
if redis.call('ZCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('DEL', unpack(KEYS))
return 1
"""


@dataclass(frozen=True)
class Encoded:
    """A request ready to push: its id, priority and JSON payload (kept to retry a push as is)."""

    request_id: str
    priority: int
    payload: bytes
    check: DupeCheck | None = None


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
        named = QueueKeys(self.key)
        self.keys = named.core
        self.queue_key, self.payloads_key, self.leases_key, self.owners_key, self.requeued_key = self.keys
        self.seq_key = named.seq
        self.dead_key = named.dead
        self._push = server.register_script((lua_check_and_add or _LUA_NO_CHECK) + _LUA_PUSH)
        self._push_batch = server.register_script((lua_check_and_add or _LUA_NO_CHECK) + _LUA_PUSH_BATCH)
        self._pop = server.register_script(_LUA_POP)
        self._requeue = server.register_script(_LUA_REQUEUE_ONLY)
        self._ack = server.register_script(_LUA_ACK)
        self._renew = server.register_script(_LUA_RENEW)
        self._release = server.register_script(_LUA_RELEASE)
        self._bury = server.register_script(_LUA_BURY)
        self._clear_if_idle = server.register_script(_LUA_CLEAR_IF_IDLE)
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
        if self.defaults and self.serializer is serialization:
            encoded: bytes = serialization.dumps(*serialization.without_defaults(obj, self.defaults))
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
        for key, value in self.defaults.items():
            if key not in obj:
                obj[key] = value if key in self._immutable_defaults else serialization.copy_plain(value)
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
        return Encoded(self.request_id(request), priority, payload, None if request.dont_filter else check)

    def push(self, request: Request, check: DupeCheck | None = None) -> bool:
        """Queue ``request`` unless ``check`` finds it seen; True if queued (or already there)."""
        return self.push_encoded(self.encode(request, check)) != 0

    def push_encoded(self, entry: Encoded, client: Any = None) -> int:
        """1 queued, 0 seen before (not queued), 2 the id was already queued or leased."""
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
        keys: list[Any] = [self.queue_key, self.payloads_key, self.seq_key]
        index: dict[str, int] = {}
        args: list[Any] = []
        for entry in entries:
            args += [entry.request_id, entry.priority, entry.payload]
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
        keys = [self.queue_key, self.payloads_key, self.seq_key, *check_keys]
        args = [entry.request_id, entry.priority, entry.payload, len(check_args), *check_args]
        return keys, args

    # -- leasing ---------------------------------------------------------------------

    def pop(self, worker_id: str, lease_seconds: float, count: int = 1) -> Popped:
        """Lease up to ``count`` requests to ``worker_id`` (expired leases go back first)."""
        self.round_trips += 1
        return self._popped(
            self._pop(keys=self.keys, args=self._pop_arguments(worker_id, lease_seconds, count))
        )

    @staticmethod
    def _pop_arguments(worker_id: str, lease_seconds: float, count: int) -> list[Any]:
        return [worker_id, _ms(lease_seconds), max(1, count), REQUEUE_BATCH]

    def _popped(self, reply: list[Any]) -> Popped:
        popped = Popped(requeued=int(reply[0]), remaining=int(reply[1]), missing=int(reply[2]))
        for raw_id, payload in zip(reply[3::2], reply[4::2], strict=True):
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
        """Extend ``worker_id``'s leases on these ids; returns the ids it no longer holds (requeued)."""
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

    def bury(self, request_id: str, reason: str) -> bool:
        """Move a request that can't be decoded out of the way, into the ``dead`` hash, with the reason."""
        self.round_trips += 1
        return bool(self._bury(keys=[*self.keys, self.dead_key], args=[request_id, reason]))

    # -- sizes -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Requests waiting in the queue (not leased)."""
        self.round_trips += 1
        return int(self.server.zcard(self.queue_key))

    def leased_count(self) -> int:
        """Requests leased to some worker and not yet acknowledged."""
        self.round_trips += 1
        return int(self.server.zcard(self.leases_key))

    def pending(self) -> tuple[int, int]:
        """(queued, leased) in one round trip."""
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(self.queue_key)
        pipe.zcard(self.leases_key)
        self.round_trips += 1
        queued, leased = pipe.execute()
        return int(queued), int(leased)

    def lease_ids(self) -> list[str]:
        """Ids leased right now, to anyone (for tests and status)."""
        self.round_trips += 1
        return [_text(item) for item in self.server.zrange(self.leases_key, 0, -1)]

    # -- clearing ----------------------------------------------------------------------

    def clear(self) -> None:
        """Delete the queue, payloads, leases and counters (dead letters stay for inspection)."""
        self.round_trips += 1
        self.server.delete(*self.keys, self.seq_key)

    def clear_if_idle(self) -> bool:
        """Delete everything but dead letters if nothing is queued or leased; True if deleted."""
        self.round_trips += 1
        return bool(self._clear_if_idle(keys=[*self.keys, self.seq_key]))


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return value is None or isinstance(value, (str, bytes, int, float, bool))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
