"""The whole userinfo of a URI is hidden, whatever it holds: random userinfo, drawn by hypothesis.

Deterministic in CI (derandomized, no example database); ``FUZZ_EXAMPLES=N FUZZ_SEED=S`` runs
another, longer campaign, as the other fuzz tests do.
"""

from __future__ import annotations

from hypothesis import given, seed, settings
from hypothesis import strategies as st
from test_fuzz_admitted_urls import EXAMPLES, SEED

from scrapy_sharedcrawl.redact import redact_uri

#: Pieces a password typed as is may hold: URI syntax, schemes, percent signs, and any other
#: character but whitespace (a password with a space and then ``scheme://`` reads as two URIs).
_PIECES = st.one_of(
    st.sampled_from(
        [":", "/", "//", "://", "@", "#", "?", "%", "%40", "=", "&", ";", ",", "'", '"', "(", ")"]
    ),
    st.sampled_from(["ab", "redis", "mongodb+srv", "x.y-z", "password", "token", "Z9"]),
    st.characters(exclude_categories=("Cs",)).filter(lambda c: not c.isspace()),
)
USERINFO = st.lists(_PIECES, min_size=1, max_size=12).map("".join)


def test_a_password_holding_a_scheme_is_hidden_whole() -> None:
    assert redact_uri("redis://:ab://cd@h") == "redis://***@h"
    assert redact_uri("see redis://:ab://cd@h:6379/0 now") == "see redis://***@h:6379/0 now"
    # a second URI after whitespace is still a URI of its own
    assert redact_uri("redis://h1 mongodb://u:p@h2") == "redis://h1 mongodb://***@h2"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None)
@seed(int(SEED or 0))
@given(USERINFO, st.sampled_from(["redis", "rediss", "mongodb", "mongodb+srv", "https"]))
def test_random_userinfo_is_hidden_whole(userinfo: str, scheme: str) -> None:
    uri = f"{scheme}://{userinfo}@db.internal:6379/0"
    assert redact_uri(uri) == f"{scheme}://***@db.internal:6379/0"
    assert (
        redact_uri(f"cannot reach {uri} (refused)")
        == f"cannot reach {scheme}://***@db.internal:6379/0 (refused)"
    )
