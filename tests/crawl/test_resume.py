"""A crawl stopped with Ctrl-C resumes where it stopped (JOBDIR), losing and repeating nothing."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from harness import ROOT, crawl_command, crawl_env, read_jsonl, replica_server, wait_for
from truth import assert_items_match

from solidot_replica import Replica, ReplicaConfig

STORIES, LAST_SID = 300, 80300


def test_interrupted_crawl_resumes_and_a_finished_one_starts_afresh(tmp_path: Path) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))
    output, jobdir = tmp_path / "items.jsonl", tmp_path / "job"
    args = {"sids": f"{min(model.sids())}-{max(model.sids())}"}
    settings = {"JOBDIR": str(jobdir), "CONCURRENT_REQUESTS": "4", "LOG_FILE": str(tmp_path / "crawl.log")}
    # every response a little slow, so the crawl is still running when interrupted
    with replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.05") as server:
        env = crawl_env(server, tmp_path / "stats.json")
        command = crawl_command(output, args, settings, append=True)
        first = subprocess.Popen(command, cwd=ROOT, env=env)
        wait_for(lambda: len(read_jsonl_lines(output)) >= 40, timeout=120, what="40 items written")
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 0
        interrupted = read_jsonl(output)
        assert 40 <= len(interrupted) < len(model.sids())
        assert (jobdir / "requests.seen").exists()

        second = subprocess.run(command, cwd=ROOT, env=env, timeout=300)
        assert second.returncode == 0
        truths = {sid: model.truth(sid, server.base_url) for sid in model.sids()}
        assert_items_match(read_jsonl(output), truths, categories="subset")
        assert not (jobdir / "requests.seen").exists(), "a finished crawl should clear its resume state"


def read_jsonl_lines(path: Path) -> list[str]:
    """Complete lines written so far (the exporter may be mid-line)."""
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").split("\n")[:-1] if line.strip()]
