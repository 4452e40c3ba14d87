"""A crawl on a machine without network or DNS says so in one line: no host of the crawl resolves
(it used to log "Pausing <host> … CannotResolveHostError" for every host and retry). No DNS query
leaves the test: the crawl's resolver fails every name, as an offline machine's does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness import FAST_SETTINGS, ROOT

TESTS = Path(__file__).resolve().parents[1]


def test_offline_the_crawl_says_once_that_no_host_resolves(tmp_path: Path) -> None:
    settings = {
        **FAST_SETTINGS,
        "TWISTED_DNS_RESOLVER": "offline_resolver.NoDNS",
        "RETRY_TIMES": "2",
        "SOLIDOT_STATS_FILE": "",
        "LOG_FILE": str(tmp_path / "crawl.log"),
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "solidot", "-O", str(tmp_path / "items.jsonl")]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SOLIDOT_", "REDIS_", "MONGO_"))},
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
    }
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "crawl.log").read_text(encoding="utf-8") + done.stderr
    assert done.returncode == 0, log[-3000:]
    said = re.findall(
        r"ERROR: No host of the crawl resolves \((\d+) tried: ([^)]*)\): no network, or no DNS\?", log
    )
    assert len(said) == 1, log[-3000:]
    tried, hosts = said[0]
    assert int(tried) >= 2 and "www.solidot.org" in hosts  # the home page and the category pages' hosts
    assert not re.search(r"INFO: Pausing \S+ for .*CannotResolveHostError", log)
    assert "'backoff/resolve_errors'" in log
