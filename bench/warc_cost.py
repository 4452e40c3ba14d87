"""What keeping the raw pages costs: the ``solidot`` crawl with WARC on against off, and reparse's rate.

Both crawls fetch the same story pages of one replica process, in the same
run, alternating, at full speed (bench/crawl_throughput.py's settings). Reports
pages/s of each and their ratio (goal ≥ 0.9×), the WARC bytes on disk per story
and per fetch, then ``solidot-crawl reparse`` of the last WARC-on crawl's files to
JSON Lines: stories/s (start-up excluded, from its stats) against the crawl's.

    .venv/bin/python bench/warc_cost.py --stories 3000 --rounds 2
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from crawl_throughput import (
    CPU_CLOCK,
    ROOT,
    Run,
    bench_options,
    crawl_env,
    median_cpu,
    median_rate,
    print_runs,
    run_measured,
    sid_range,
    solidot_crawl,
)

sys.path.insert(0, str(ROOT / "tests"))

from harness import replica_server


def reparse(work: Path, warc: Path, env: dict[str, str]) -> Run:
    """``solidot-crawl reparse`` of ``warc`` to JSON Lines; its rate from its own stats."""
    stats_file = work / "reparse.json"
    out = work / "re.jsonl"
    command = [sys.executable, "-m", "solidot_spider.cli", "reparse", str(warc), "--out", str(out), "--quiet"]
    subprocess.run(command, cwd=ROOT, env={**env, "SOLIDOT_STATS_FILE": str(stats_file)}, check=True)
    stats = json.loads(stats_file.read_text())
    pages, items = stats["response_received_count"], stats["item_scraped_count"]
    return Run("reparse", pages, items, stats["elapsed_time_seconds"], 0)


def main() -> None:
    options = bench_options(3000)
    low, high, stories = sid_range(options.stories, options.last_sid)
    runs: list[Run] = []
    with replica_server(options.stories, options.last_sid) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = crawl_env(server)
        for round_no in range(options.rounds):
            for name in ("off", "warc"):
                stats = work / f"{name}-{round_no}.json"
                cpu = work / f"{name}-{round_no}.cpu.json"
                warc = work / f"warc-{round_no}"
                extra = {"SOLIDOT_STATS_FILE": str(stats), "BENCH_CPU_FILE": str(cpu), **CPU_CLOCK}
                if name == "warc":
                    extra["WARC_DIR"] = str(warc)
                command = solidot_crawl(work, name, low, high, extra)
                runs.append(run_measured(name, command, ROOT, env, stats, cpu))
        last = runs[-1]
        warc_bytes = sum(path.stat().st_size for path in warc.iterdir())
        replay = reparse(work, warc, env)

    print(f"replica: {options.stories} sid slots, {stories} stories; {options.rounds} rounds")
    print_runs(runs)
    off, on = median_rate(runs, "off"), median_rate(runs, "warc")
    print(f"median pages/s: WARC off {off:.1f}, on {on:.1f}, ratio {on / off:.2f}x")
    off_cpu, on_cpu = median_cpu(runs, "off"), median_cpu(runs, "warc")
    print(f"median CPU ms/page: WARC off {off_cpu:.2f}, on {on_cpu:.2f}, ratio {off_cpu / on_cpu:.2f}x")
    print(
        f"WARC on disk: {warc_bytes:,} bytes, {warc_bytes / last.items:,.0f} bytes per story, "
        f"{warc_bytes / last.pages:,.0f} per fetch ({last.pages} fetches, {last.items} stories)"
    )
    crawl_rate, replay_rate = last.items / last.seconds, replay.items / replay.seconds
    print(
        f"reparse: {replay.items} stories in {replay.seconds:.1f} s, {replay_rate:.1f} stories/s; "
        f"the crawl's {crawl_rate:.1f} stories/s: {replay_rate / crawl_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
