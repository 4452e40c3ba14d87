"""`solidot-crawl workers` takes its shared options before or after the action (issue 25, row 7):
the README writes `workers list --json`, which argparse refused while the options belonged to
`workers` alone."""

from __future__ import annotations

import pytest

from solidot_spider.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["workers", "list", "--json", "--scrapyd", "http://127.0.0.1:1", "--slots", "2", "--spider", "s"],
        ["workers", "--json", "--scrapyd", "http://127.0.0.1:1", "--slots", "2", "--spider", "s", "list"],
        ["workers", "--json", "list", "--scrapyd", "http://127.0.0.1:1", "--slots", "2", "--spider", "s"],
    ],
    ids=["after", "before", "mixed"],
)
def test_shared_options_count_before_or_after_the_action(argv: list[str]) -> None:
    options = build_parser().parse_args(argv)
    assert (options.action, options.json, options.scrapyd, options.slots, options.spider) == (
        "list",
        True,
        "http://127.0.0.1:1",
        2,
        "s",
    )


def test_an_option_not_given_after_the_action_keeps_its_default_or_the_one_before() -> None:
    options = build_parser().parse_args(["workers", "--slots", "3", "up", "5"])
    assert (options.slots, options.json, options.config, options.target, options.count) == (
        3,
        False,
        None,
        [],
        5,
    )


def test_workers_list_json_runs_past_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """As the README writes it: the command runs (and reports the unreachable node in one line)."""
    code = main(["workers", "list", "--json", "--scrapyd", "http://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "usage:" not in err and "unrecognized arguments" not in err
    assert err.startswith("solidot-crawl workers:")


def test_config_and_scrapyd_given_at_two_levels_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["workers", "--config", "scrapy.cfg", "list", "--scrapyd", "http://127.0.0.1:1"])
    assert code == 2
    assert "--config and --scrapyd" in capsys.readouterr().err
