"""Requests ↔ JSON bytes: the shared queue holds data, never code.

:func:`dumps` / :func:`loads` carry :meth:`scrapy.Request.to_dict` as compact JSON; callbacks are
resolved by name on the spider only, and anything JSON can't carry raises
:class:`UnserializableRequest`. Also usable as scrapy-redis's ``SCHEDULER_SERIALIZER``.

Design notes: docs/framework-design.md#serialization.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection, Mapping
from typing import Any

from scrapy import Request, Spider
from scrapy.utils.request import request_from_dict

BYTES_TAG = "$b"
MAP_TAG = "$map"
_TAGS = frozenset((BYTES_TAG, MAP_TAG))

#: A plain Request's values that need not travel (request_from_dict restores them).
_DEFAULTS: dict[str, Any] = {
    "headers": {},
    "body": b"",
    "cookies": {},
    "meta": {},
    "encoding": "utf-8",
    "flags": [],
    "cb_kwargs": {},
    "dont_filter": False,
    "method": "GET",
    "priority": 0,
    "callback": None,
    "errback": None,
}


#: One-letter names of a request dict's keys in a payload (other keys travel as they are).
SHORT_KEYS: dict[str, str] = {
    "url": "u",
    "callback": "c",
    "errback": "e",
    "headers": "h",
    "body": "b",
    "cookies": "C",
    "meta": "m",
    "encoding": "E",
    "priority": "p",
    "dont_filter": "d",
    "flags": "f",
    "cb_kwargs": "k",
    "method": "M",
    "_class": "t",
    # what :func:`compact` writes in place of a field, for the shared queue's own payloads
    "meta+": "m+",
    "meta-": "m-",
    "cb_kwargs+": "k+",
    "cb_kwargs-": "k-",
    "start": "s",
}
_LONG_KEYS = {short: long for long, short in SHORT_KEYS.items()}
#: The fields a payload may give as changes to the spider's default dict (``"meta+"``: the keys whose
#: values differ or are new, ``"meta-"``: the default's keys the request lacks).
_DELTA_FIELDS = ("meta", "cb_kwargs")
#: Scrapy's mark of a start request (:class:`scrapy.spidermiddlewares.start.StartSpiderMiddleware`), which
#: every seed carries: ``"s":1`` in a payload instead of 23 bytes of meta.
START_FLAG = "is_start_request"


#: The private methods by which Scrapy's ``CrawlSpider`` calls a rule's callback and errback: a rule
#: request names them, so they travel (the admission policy allows them for a CrawlSpider only).
CRAWL_SPIDER_DISPATCH = frozenset({"_callback", "_errback"})


class UnserializableRequest(ValueError):
    """A request (or a payload read back) that is not plain data."""


def dumps(obj: dict[str, Any], keep: Collection[str] = ()) -> bytes:
    """JSON bytes of a request dict (``Request.to_dict(spider=…)``); refuses anything but plain data.
    Keys named in ``keep`` travel even when their value is a plain Request's default.

    >>> dumps({"url": "https://example.org/", "body": b"", "method": "GET", "priority": 10})
    b'{"u":"https://example.org/","p":10}'
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("url"), str):
        raise UnserializableRequest(f"not a request dict: {type(obj).__name__}")
    plain = "_class" not in obj  # another class's constructor may read its arguments differently
    compact = {
        key: value
        for key, value in obj.items()
        if key in keep or not (plain and key in _DEFAULTS and value == _DEFAULTS[key])
    }
    reserved = sorted(_LONG_KEYS.keys() & obj.keys())  # a request class attribute named like a short key
    if reserved:
        raise UnserializableRequest(f"request dict key {reserved[0]!r} is reserved")
    try:
        if _TAGS.isdisjoint(compact):
            encoded = {key: _encode_field(key, value) for key, value in compact.items()}
        else:  # the request dict itself is then a map of its own (an attribute named like a tag)
            encoded = _encode(compact, "request")
        short = {SHORT_KEYS.get(key, key): value for key, value in encoded.items()}
        return _ENCODER.encode(short).encode("utf-8")
    except ValueError as error:
        if isinstance(error, UnserializableRequest):
            raise
        raise UnserializableRequest(f"request is not plain data: {error}") from None
    except RecursionError:  # a meta nested thousands deep: no request looks like that
        raise UnserializableRequest("request is nested too deeply to be plain data") from None


def loads(data: bytes | str) -> dict[str, Any]:
    """The request dict back from :func:`dumps` output, checked to be safe to rebuild.

    >>> loads(b'{"url":"https://example.org/","body":{"$b":"a=1"}}')
    {'url': 'https://example.org/', 'body': b'a=1'}
    """
    try:
        if isinstance(data, (bytes, bytearray)):  # as json.loads reads bytes (UTF-8, -16 or -32)
            data = data.decode(json.detect_encoding(data), "surrogatepass")
        decoded = _DECODER.decode(data)  # tagged values decoded as they are parsed (_untag)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnserializableRequest(f"payload is not JSON: {error}") from None
    except RecursionError:  # thousands of nested brackets: no request looks like that
        raise UnserializableRequest("payload is nested too deeply to be a request") from None
    obj = long_keys(decoded)
    if not isinstance(obj, dict) or not isinstance(obj.get("url"), str):
        raise UnserializableRequest("payload is not a request dict (no url)")
    for key in ("callback", "errback"):
        name = obj.get(key)
        if name is not None and not _is_callback_name(name):
            raise UnserializableRequest(f"{key} {name!r} is not a public method name")
    if "_class" in obj:
        _request_class(obj["_class"])
    return obj


def long_keys(decoded: Any) -> Any:
    """A payload's top-level keys by their long names; a key given both ways is refused."""
    if not isinstance(decoded, dict):
        return decoded
    named = {_LONG_KEYS.get(key, key): value for key, value in decoded.items()}
    if len(named) != len(decoded):
        raise UnserializableRequest("payload names a key twice (short and long)")
    return named


def without_defaults(obj: dict[str, Any], defaults: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """``obj`` without the values equal to ``defaults`` (a spider's ``shared_request_defaults``), and
    the keys of ``defaults`` it differs in, which must travel even as a plain Request's default
    (an errback of None where the spider's default is a method). A meta or cb_kwargs that shares some
    of its default's items travels as its changes (``meta+``, ``meta-``): a CrawlSpider's rule request
    adds ``rule``, ``link_text`` and ``depth`` to the default meta, which then stays out of its payload.

    >>> without_defaults({"url": "u", "errback": None}, {"errback": "failed"})
    ({'url': 'u', 'errback': None}, {'errback'})
    >>> without_defaults({"url": "u", "meta": {"a": 1, "depth": 2}}, {"meta": {"a": 1, "b": 2}})
    ({'url': 'u', 'meta+': {'depth': 2}, 'meta-': ['b']}, set())
    """
    kept = dict(obj)
    differing = set()
    for key, default in defaults.items():
        value = kept.get(key, _DEFAULTS.get(key))
        if value == default:
            kept.pop(key, None)
        elif (
            key in _DELTA_FIELDS
            and type(value) is dict
            and type(default) is dict
            and _shares_items(value, default)
        ):
            del kept[key]
            changed = {k: v for k, v in value.items() if k not in default or default[k] != v}
            absent = [k for k in default if k not in value]
            if changed:
                kept[f"{key}+"] = changed
            if absent:
                kept[f"{key}-"] = absent
        else:
            kept[key] = value
            differing.add(key)
    return kept, differing


def _shares_items(value: dict[str, Any], default: dict[str, Any]) -> bool:
    return any(k in default and default[k] == v for k, v in value.items())


def compact(obj: dict[str, Any], defaults: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A request dict as the shared queue's payload carries it (with :func:`dumps`, whose ``keep`` is the
    second item): ``defaults`` left out (:func:`without_defaults`) and the start mark as one flag.
    :func:`expand` makes it whole again."""
    meta = obj.get("meta")
    start = type(meta) is dict and meta.get(START_FLAG) is True
    if start:
        obj = {**obj, "meta": {key: value for key, value in obj["meta"].items() if key != START_FLAG}}
    kept, differing = without_defaults(obj, defaults)
    if start:
        kept["start"] = 1
    return kept, differing


def expand(obj: dict[str, Any], defaults: Mapping[str, Any], shared: Collection[str] = ()) -> dict[str, Any]:
    """The request dict a :func:`compact` payload stands for, in place: the spider's ``defaults`` for what
    it leaves out (each dict or list a copy, but for the keys in ``shared``: values no request can
    change), its changes applied to them, the start mark back in meta. Raises
    :class:`UnserializableRequest` for changes that are not what :func:`compact` writes.

    >>> expand({"url": "u", "meta+": {"depth": 2}, "meta-": ["b"], "start": 1}, {"meta": {"a": 1, "b": 2}})
    {'url': 'u', 'meta': {'a': 1, 'depth': 2, 'is_start_request': True}}
    """
    start = obj.pop("start", None)
    if start is not None and (type(start) is not int or start != 1):
        raise UnserializableRequest("malformed start flag")
    for key in _DELTA_FIELDS:
        changed, absent = obj.pop(f"{key}+", None), obj.pop(f"{key}-", None)
        if changed is None and absent is None:
            continue
        if key in obj:
            raise UnserializableRequest(f"payload gives {key} both whole and as changes")
        if not isinstance(changed, (dict, type(None))) or not (
            absent is None or (isinstance(absent, list) and all(isinstance(k, str) for k in absent))
        ):
            raise UnserializableRequest(f"malformed changes to {key}")
        default = defaults.get(key)
        whole = copy_plain(default) if isinstance(default, dict) else {}
        for name in absent or ():
            whole.pop(name, None)
        whole.update(changed or {})
        obj[key] = whole
    fill_defaults(obj, defaults, shared)
    if start:
        meta = obj.setdefault("meta", {})
        if not isinstance(meta, dict):
            raise UnserializableRequest("meta is not a mapping")
        meta[START_FLAG] = True
    return obj


def fill_defaults(obj: dict[str, Any], defaults: Mapping[str, Any], shared: Collection[str] = ()) -> None:
    """Give ``obj`` each of ``defaults`` it lacks: a copy of each dict or list, but for the keys in
    ``shared`` (values no request can change), so that no two requests share one."""
    for key, value in defaults.items():
        if key not in obj:
            obj[key] = value if key in shared else copy_plain(value)


def check_defaults(defaults: Any, owner: str) -> dict[str, Any]:
    """A spider's ``shared_request_defaults``, checked: request dict keys with plain-data values."""
    if defaults is None:
        return {}
    if not isinstance(defaults, Mapping):
        raise ValueError(f"{owner}: shared_request_defaults must be a dict, not {type(defaults).__name__}")
    unknown = sorted(set(defaults) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"{owner}: shared_request_defaults names {unknown[0]!r}, not a request field")
    _encode(dict(defaults), "shared_request_defaults")  # plain data, or UnserializableRequest
    return dict(defaults)


def request_to_bytes(request: Request, spider: Spider) -> bytes:
    """``request`` as JSON bytes; callbacks must be methods of ``spider``."""
    return dumps(request_to_dict(request, spider))


def request_to_dict(request: Request, spider: Spider) -> dict[str, Any]:
    """``request.to_dict(spider=spider)``, with callbacks named from the bound method itself.

    Scrapy's ``to_dict`` finds a callback's name by listing every attribute of the
    spider (``inspect.getmembers``), twice per request: 1.7 s of a 5,000-page
    crawl under cProfile. A spider method's ``__name__`` is its name, checked to
    resolve to the same function; anything else takes Scrapy's own path.
    """
    callback, errback = _method_name(request.callback, spider), _method_name(request.errback, spider)
    if callback is _UNNAMED or errback is _UNNAMED:
        return request.to_dict(spider=spider)  # Scrapy's search, or its ValueError
    obj: dict[str, Any] = {
        "url": request.url,
        "callback": callback,
        "errback": errback,
        "headers": dict(request.headers),
    }
    for attribute in request.attributes:
        obj.setdefault(attribute, getattr(request, attribute))
    if type(request) is not Request:
        obj["_class"] = f"{type(request).__module__}.{type(request).__name__}"
    return obj


_UNNAMED = object()


def _method_name(function: Any, spider: Spider) -> Any:
    """The name of ``spider``'s bound method ``function``, ``function`` itself if not callable (None),
    or ``_UNNAMED``."""
    if not callable(function):
        return function
    name = getattr(function, "__name__", None)
    if getattr(function, "__self__", None) is not spider or not isinstance(name, str):
        return _UNNAMED
    found = getattr(getattr(spider, name, None), "__func__", None)
    return name if found is not None and found is getattr(function, "__func__", None) else _UNNAMED


def request_from_bytes(data: bytes | str, spider: Spider) -> Request:
    """The request back, its callback and errback looked up by name on ``spider``."""
    obj = loads(data)
    for key in ("callback", "errback"):
        name = obj.get(key)
        if name is not None and not callable(getattr(spider, name, None)):
            raise UnserializableRequest(f"{key} {name!r} is not a method of spider {spider.name!r}")
    return request_from_dict(obj, spider=spider)


#: Where a value sits in a request dict, for error messages: a name, or (parent, how, key), formatted
#: only when something is refused (:func:`_where`), not for every value encoded.
_Path = str | tuple[Any, str, Any]


def _where(path: _Path) -> str:
    if isinstance(path, str):
        return path
    parent, how, key = path
    if how == "index":
        return f"{_where(parent)}[{key}]"
    if how == "key":
        return f"{_where(parent)} key {key!r}"
    return f"{_where(parent)}[{key!r}]"


def _encode(value: Any, path: _Path) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnserializableRequest(f"{_where(path)} is {value!r}: JSON has no NaN or infinity")
        return value
    if isinstance(value, (bytes, bytearray)):
        return {BYTES_TAG: bytes(value).decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [_encode(item, (path, "index", index)) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(key, str) for key in value) and not _TAGS.intersection(value):
            return {key: _encode(item, (path, "item", key)) for key, item in value.items()}
        return {
            MAP_TAG: [
                [_encode(key, (path, "key", key)), _encode(item, (path, "item", key))]
                for key, item in value.items()
            ]
        }
    raise UnserializableRequest(
        f"{_where(path)} is a {type(value).__module__}.{type(value).__qualname__}, not plain data "
        "(dict, list, tuple, str, bytes, int, float, bool, None)"
    )


_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def _is_json(value: Any) -> bool:
    """Whether ``value`` is plain data JSON carries as it is (what :func:`_encode` would return unchanged,
    but for a tuple, which JSON writes as the list ``_encode`` makes of it): scalars, finite floats,
    lists, tuples, and dicts (exactly) of str keys that are not tags. No copy, no path: the fast check
    of :func:`dumps`."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or key in _TAGS or not _is_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(map(_is_json, value))
    if isinstance(value, float):
        return math.isfinite(value)
    # a subclass of str or int (lxml's text of a link, an IntEnum) is written as its base type
    return isinstance(value, (str, int))


def copy_plain(value: Any) -> Any:
    """A copy of plain data (a checked ``shared_request_defaults`` value): its dicts and lists are new,
    the rest is immutable and shared. ``copy.deepcopy`` does the same at a few times the cost.

    >>> default = {"handle_httpstatus_list": [404]}
    >>> copy = copy_plain(default)
    >>> copy == default, copy["handle_httpstatus_list"] is default["handle_httpstatus_list"]
    (True, False)
    """
    if isinstance(value, dict):
        return {key: copy_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_plain(item) for item in value)
    if isinstance(value, bytearray):
        return bytearray(value)
    return value


def _encode_field(key: str, value: Any) -> Any:
    """One field of a request dict as JSON carries it: as it is when it is plain JSON already (most
    fields: checked without a copy), headers by their own path, anything else through :func:`_encode`
    (bytes, tuples, maps with other keys; a refusal and its message)."""
    if key == "headers":
        return _encode_headers(value)
    return value if _is_json(value) else _encode(value, ("request", "item", key))


def _encode_headers(headers: Any) -> Any:
    """``dict(request.headers)`` (bytes name → list of bytes values, a Referer on most requests) as
    :func:`_encode` writes it, without its paths; anything else through :func:`_encode` itself."""
    if type(headers) is not dict:
        return _encode(headers, ("request", "item", "headers"))
    pairs = []
    for name, values in headers.items():
        if type(name) is not bytes or type(values) is not list or any(type(v) is not bytes for v in values):
            return _encode(headers, ("request", "item", "headers"))
        encoded = [{BYTES_TAG: value.decode("latin-1")} for value in values]
        pairs.append([{BYTES_TAG: name.decode("latin-1")}, encoded])
    return {MAP_TAG: pairs} if pairs else {}


def _untag(value: dict[str, Any]) -> Any:
    """A JSON object as it is parsed (the decoder's ``object_hook``, innermost first): a tagged value
    (``{"$b": text}``, ``{"$map": pairs}``) as the bytes or map it stands for, any other as it is."""
    if len(value) != 1:
        return value
    if BYTES_TAG in value:
        text = value[BYTES_TAG]
        if not isinstance(text, str):
            raise UnserializableRequest("malformed bytes value")
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise UnserializableRequest("malformed bytes value (not latin-1)") from None
    if MAP_TAG in value:
        pairs = value[MAP_TAG]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise UnserializableRequest("malformed mapping value")
        try:
            return dict(pairs)
        except TypeError:
            raise UnserializableRequest("malformed mapping value (unhashable key)") from None
    return value


def _refuse_constant(name: str) -> Any:
    raise UnserializableRequest(f"payload holds {name}, which is not plain data")


#: One encoder and one decoder for every request (``json.dumps``/``loads`` with options build one a call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_hook=_untag)


def _is_public_name(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


def _is_callback_name(name: Any) -> bool:
    return _is_public_name(name) or name in CRAWL_SPIDER_DISPATCH


def _request_class(path: Any) -> type[Request]:
    """The Request subclass named ``path``, without importing anything (an import runs code)."""
    if not isinstance(path, str) or "." not in path:
        raise UnserializableRequest(f"request class {path!r} is not a dotted path")
    module_name, _, name = path.rpartition(".")
    module = sys.modules.get(module_name)
    cls = getattr(module, name, None) if module is not None and _is_public_name(name) else None
    if not (isinstance(cls, type) and issubclass(cls, Request)):
        raise UnserializableRequest(f"request class {path!r} is not a loaded scrapy.Request subclass")
    return cls
