"""A project's old setting names, still read for a while: ``RENAMED_SETTINGS``, old name → new name.

:func:`apply_legacy_names` (called by the add-on, and by command-line tools that build settings
without add-ons) copies each old name's value to its new name, unless the new one was given at a
priority as high, and warns once per old name.

Design notes: docs/framework-design.md#legacy.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import SettingError

#: The setting a project lists its renamed settings in.
RENAMED_SETTINGS = "RENAMED_SETTINGS"
#: A setting's name as a settings module declares it (Scrapy reads only upper-case names there).
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def renamed_settings(settings: BaseSettings) -> dict[str, str]:
    """The project's ``RENAMED_SETTINGS`` (a dict, or its JSON as ``-s`` gives it), checked: setting
    names to other setting names, no name both old and new (a chain would depend on the order).

    Anything else raises :class:`.config.SettingError`, one line naming the setting and the entry.

    >>> from scrapy.settings import Settings
    >>> renamed_settings(Settings({"RENAMED_SETTINGS": '{"OLD_RATE": "CLUSTER_HOST_RATE"}'}))
    {'OLD_RATE': 'CLUSTER_HOST_RATE'}
    """
    allowed = "must map old setting names to new ones (upper case: {'OLD_NAME': 'NEW_NAME'})"
    try:
        given = settings.getdict(RENAMED_SETTINGS)
    except (TypeError, ValueError):  # neither a dict nor the JSON of one
        given_as = _shown(settings.get(RENAMED_SETTINGS))
        raise SettingError(f"{RENAMED_SETTINGS} {allowed}, got {given_as}") from None
    for old, new in given.items():
        if not (_is_name(old) and _is_name(new)) or old == new:
            raise SettingError(f"{RENAMED_SETTINGS} {allowed}, got {_shown(old)}: {_shown(new)}")
    both = sorted(set(given) & set(given.values()))
    if both:
        raise SettingError(
            f"{RENAMED_SETTINGS} names {both[0]} both as an old name and as a new one: map every old "
            "name straight to the name read today"
        )
    return dict(given)


def apply_legacy_names(settings: BaseSettings) -> list[str]:
    """Carry every old name of ``RENAMED_SETTINGS`` that is set over to its new name, then drop it
    (so settings that pass here twice, a tool's and then its crawler's, warn once); the old names
    found, each warned about.

    The value moves at the old name's priority, so ``-s OLD_LEASE_SECONDS=30`` still beats the
    project's ``SCHEDULER_LEASE_SECONDS``, and a new name given at the same or a higher priority wins.
    """
    found = []
    for old, new in renamed_settings(settings).items():
        value = settings.get(old)
        if value is None or value == "":
            continue
        found.append(old)
        priority = settings.getpriority(old) or 0
        if not settings.frozen:
            if priority > (settings.getpriority(new) or 0):
                settings.set(new, value, priority)
            settings.delete(old, priority)  # carried over: a later pass (the add-on after a tool) skips it
        warnings.warn(
            f"The setting {old} is deprecated: use {new} (same meaning); {old} is read until the next "
            "release",
            ScrapyDeprecationWarning,
            stacklevel=2,
        )
    return found


def old_names_of(settings: BaseSettings, names: Iterable[str]) -> list[str]:
    """The old names ``RENAMED_SETTINGS`` gives any of ``names`` (where the new name is read, so is
    the old one: the add-on reads the old names of the settings it takes from the environment)."""
    wanted = set(names)
    return [old for old, new in renamed_settings(settings).items() if new in wanted]


def _is_name(name: object) -> bool:
    return isinstance(name, str) and _SETTING_NAME.fullmatch(name) is not None


def _shown(value: object) -> str:
    """A value as a message shows it: its repr, cut short (a setting may hold anything)."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
