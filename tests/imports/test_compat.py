"""The private Scrapy APIs the project borrows are all in scrapy_sharedcrawl/compat.py, behind one check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import scrapy

import solidot_spider
from scrapy_sharedcrawl import compat

#: The packages that must borrow only through compat.py: the framework and the project on it.
PACKAGES = [Path(compat.__file__).resolve().parent, Path(solidot_spider.__file__).resolve().parent]
#: The private attributes compat.py borrows: no other module may touch them.
BORROWED = re.compile(r"\._latercall\b|\._apply_settings\b|[\"']_engine[\"']|[\"']_slot[\"']|\._extensions\b")


def test_another_scrapy_version_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    compat.require_supported_scrapy()  # the installed one is supported
    monkeypatch.setattr(scrapy, "__version__", "2.20.0")
    with pytest.raises(RuntimeError, match=r"this is Scrapy 2\.20\.0: install scrapy>=2\.19,<2\.20"):
        compat.running_engine(object())  # type: ignore[arg-type]


def test_no_other_module_touches_the_borrowed_attributes() -> None:
    offenders = [
        f"{path.relative_to(package.parent)}:{number}"
        for package in PACKAGES
        for path in package.rglob("*.py")
        if path.name != "compat.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BORROWED.search(line)
    ]
    assert offenders == []
