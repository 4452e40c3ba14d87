"""Reading the shared crawl's settings against the defaults each module declares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrapy.settings import BaseSettings


def setting(settings: BaseSettings, name: str, defaults: Mapping[str, Any]) -> Any:
    """``settings[name]``, or its declared default when unset or empty (``-s NAME=`` means "default",
    as scrapy-redis reads its own settings)."""
    value = settings.get(name)
    return defaults[name] if value is None or value == "" else value
