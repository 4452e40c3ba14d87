"""Reading settings: the shared crawl's against the defaults each module declares, and numbers
checked at start-up against the range that makes sense for them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object


class SettingError(ValueError):
    """A setting whose value can't work: raised at start-up, naming the setting and what it allows."""


#: The scheduler that makes a crawl shared (see :func:`is_shared_crawl`).
LEASING_SCHEDULER = "scrapy_sharedcrawl.scheduler.LeasingScheduler"


#: The settings scrapy-redis users point at their Redis with (scrapy-redis's own names), and the
#: Sentinel ones that replace them (:mod:`.sentinel`): any of them set (but the Sentinel password,
#: which names no Redis) means "this crawl goes through Redis".
REDIS_LOCATION_SETTINGS = (
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_PARAMS",
    "REDIS_SENTINEL_PASSWORD",
)


def redis_settings_given(settings: BaseSettings) -> list[str]:
    """The Redis location settings that are set (non-empty), in :data:`REDIS_LOCATION_SETTINGS` order.

    >>> from scrapy.settings import Settings
    >>> redis_settings_given(Settings({"REDIS_HOST": "redis.internal", "REDIS_PARAMS": {}}))
    ['REDIS_HOST']
    """
    given = [name for name in REDIS_LOCATION_SETTINGS[:5] if str(settings.get(name) or "").strip()]
    try:
        params = bool(settings.getdict("REDIS_PARAMS"))
    except (TypeError, ValueError):  # not a dict nor JSON of one: given, and refused where it is read
        params = True
    return [*given, "REDIS_PARAMS"] if params else given


def redis_configured(settings: BaseSettings) -> bool:
    """Whether a Redis is configured, the ways scrapy-redis users give it (``REDIS_URL``, or
    ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PARAMS`` with scrapy-redis's localhost:6379 for what is left
    out): what the add-on switches the shared crawl on by, what the components that only need Redis
    (shared stats, worker registry, host rate, content hashes) switch on by, and what the
    command-line tools (``seed``, ``status``, ``workers``) read."""
    return bool(redis_settings_given(settings))


def is_shared_crawl(settings: BaseSettings) -> bool:
    """Whether this crawl is shared through Redis: a Redis is configured and the crawl runs on the
    leasing scheduler (the add-on's choice; a project that sets another ``SCHEDULER`` opts out).
    What the components that need the leasing scheduler itself ask (dedupe records hashes when it
    acknowledges; a worker without arguments waits for its seed)."""
    if not redis_configured(settings):
        return False
    scheduler = settings.get("SCHEDULER")
    try:
        scheduler_class = load_object(scheduler) if isinstance(scheduler, str) else scheduler
        leasing = load_object(LEASING_SCHEDULER)
    except (ImportError, NameError, ValueError, AttributeError):
        return False
    return isinstance(scheduler_class, type) and issubclass(scheduler_class, leasing)


def setting(settings: BaseSettings, name: str, defaults: Mapping[str, Any]) -> Any:
    """``settings[name]``, or its declared default when unset or empty (``-s NAME=`` means "default",
    as scrapy-redis reads its own settings)."""
    value = settings.get(name)
    return defaults[name] if value is None or value == "" else value


def _allowed(at_least: float | None, above: float | None, at_most: float | None, kind: str) -> str:
    """``a finite number ≥ 0``, ``an integer within 1..1,000``…: what a bounded setting accepts."""

    def shown(bound: float) -> str:
        return f"{bound:,}" if kind == "integer" else f"{bound:.12g}"

    if at_least is not None and at_most is not None:
        return f"{'an' if kind == 'integer' else 'a'} {kind} within {shown(at_least)}..{shown(at_most)}"
    bounds = [
        f"{sign} {shown(bound)}"
        for sign, bound in (("≥", at_least), (">", above), ("≤", at_most))
        if bound is not None
    ]
    what = "an integer" if kind == "integer" else "a finite number"
    return " ".join([what, " and ".join(bounds)]).strip()


def float_setting(
    settings: BaseSettings,
    name: str,
    default: float,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    meaning: str = "",
) -> float:
    """``settings[name]`` as a finite float within the bounds (``default`` when unset or empty).

    Anything else (not a number, nan, ±inf, out of range) raises :class:`SettingError` naming the
    setting, the allowed range and what was given: a crawl must not start with a value that makes
    every request fail or a loop spin. ``meaning`` is added to the message (``"0: no limit"``).

    >>> from scrapy.settings import Settings
    >>> float_setting(Settings({"X": "2.5"}), "X", 1.0, above=0)
    2.5
    >>> float_setting(Settings({"X": "nan"}), "X", 1.0, above=0)
    Traceback (most recent call last):
    ...
    scrapy_sharedcrawl.config.SettingError: X must be a finite number > 0, got 'nan'
    """
    return _bounded(settings, name, default, _finite_float, "number", at_least, above, at_most, meaning)


def int_setting(
    settings: BaseSettings,
    name: str,
    default: int,
    *,
    at_least: int | None = None,
    at_most: int | None = None,
    meaning: str = "",
) -> int:
    """``settings[name]`` as an integer within the bounds (``default`` when unset or empty); anything
    else (``"1.5"``, ``"lots"``, out of range) raises :class:`SettingError` as :func:`float_setting`."""
    return _bounded(settings, name, default, _integer, "integer", at_least, None, at_most, meaning)


#: What Scrapy's ``getbool`` accepts, as text (a bool or the ints 0/1 are taken as they are).
_TRUE, _FALSE = frozenset({"1", "true"}), frozenset({"0", "false"})


def bool_setting(settings: BaseSettings, name: str, default: bool) -> bool:
    """``settings[name]`` as a boolean, read as Scrapy's ``getbool`` reads it (``default`` when unset
    or empty); anything else raises :class:`SettingError` naming the setting, where ``getbool``'s own
    ValueError names none and ended the start in a traceback.

    >>> from scrapy.settings import Settings
    >>> bool_setting(Settings({"X": "False"}), "X", True)
    False
    >>> bool_setting(Settings({"X": "maybe"}), "X", True)
    Traceback (most recent call last):
    ...
    scrapy_sharedcrawl.config.SettingError: X must be a boolean (0/1, true/false), got 'maybe'
    """
    raw = settings.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingError(f"{name} must be a boolean (0/1, true/false), got {raw!r}")


_Number = TypeVar("_Number", int, float)


def _bounded(
    settings: BaseSettings,
    name: str,
    default: _Number,
    parse: Callable[[Any], _Number | None],
    kind: str,
    at_least: float | None,
    above: float | None,
    at_most: float | None,
    meaning: str,
) -> _Number:
    """The checks :func:`float_setting` and :func:`int_setting` share: ``parse`` reads the value
    (None: not one), then the bounds; one message names the setting, its range and what was given."""
    raw = settings.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    value = parse(raw)
    if (
        value is None
        or (at_least is not None and value < at_least)
        or (above is not None and value <= above)
        or (at_most is not None and value > at_most)
    ):
        allowed = _allowed(at_least, above, at_most, kind)
        raise SettingError(f"{name} must be {allowed}{f' ({meaning})' if meaning else ''}, got {raw!r}")
    return value


def _finite_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _integer(raw: Any) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        if text.isascii() and text.lstrip("+-").isdigit() and len(text) <= 30:
            return int(text)
    return None
