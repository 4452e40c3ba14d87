"""The examples in docstrings run (a stale expected value in one went unnoticed while nothing ran them)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import scrapy_sharedcrawl
import solidot_spider


def modules_with_examples() -> list[str]:
    """Every module of both packages whose docstrings hold a ``>>>`` example."""
    names = []
    for package in (scrapy_sharedcrawl, solidot_spider):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith("__main__"):
                continue
            found = doctest.DocTestFinder().find(importlib.import_module(info.name))
            if any(test.examples for test in found):
                names.append(info.name)
    return names


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_hold(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result}"
