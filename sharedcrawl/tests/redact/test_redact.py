"""Credentials out of logs: every shape of password, several hosts, query secrets, several URIs."""

from __future__ import annotations

import pytest

from scrapy_sharedcrawl.redact import redact_uri


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        # the userinfo is everything up to the last '@' before the host, whatever the password holds
        ("redis://:pa@ss@redis.internal:6379/0", "redis://***@redis.internal:6379/0"),
        ("redis://user:p@s@s@host", "redis://***@host"),
        ("redis://:pa ss@host:6379/0", "redis://***@host:6379/0"),
        ("redis://:  lead and trail  @host", "redis://***@host"),
        ("mongodb://u:pa/ss@db:27017/solidot", "mongodb://***@db:27017/solidot"),
        ("mongodb://u:pa#ss@db/solidot", "mongodb://***@db/solidot"),
        ("mongodb://u:pa?ss@db/solidot", "mongodb://***@db/solidot"),
        ("mongodb://u:a@b c/d#e?f%g:h@db/solidot", "mongodb://***@db/solidot"),
        # mongodb+srv, several hosts
        ("mongodb+srv://u:p@ss@cluster0.example.net/x?w=1", "mongodb+srv://***@cluster0.example.net/x?w=1"),
        (
            "mongodb://u:p@@db1:27017,db2:27018,db3/solidot?replicaSet=rs0",
            "mongodb://***@db1:27017,db2:27018,db3/solidot?replicaSet=rs0",
        ),
        # secrets in the query, however the option is spelt
        ("redis://host:6379/0?passwd=hunter2", "redis://host:6379/0?passwd=***"),
        ("redis://host/0?db=1;pwd=hunter2;x=1", "redis://host/0?db=1;pwd=***;x=1"),
    ],
)
def test_credentials_are_hidden(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert redact_uri(f"cannot reach {uri}") == f"cannot reach {shown}"
    assert redact_uri(f"cannot reach {uri}\nretrying") == f"cannot reach {shown}\nretrying"


def test_the_usual_uris_and_query_secrets_keep_their_shape() -> None:
    for uri, shown in [
        ("redis://:pa:ss@host:6379", "redis://***@host:6379"),
        ("mongodb://u:p%40ss%2F@db:27017/solidot", "mongodb://***@db:27017/solidot"),
        ("rediss://default:s3cret@cache.example.net:6380", "rediss://***@cache.example.net:6380"),
        ("https://ops:secret@scrapyd1.internal:6800/", "https://***@scrapyd1.internal:6800/"),
        ("redis://only-user@host", "redis://***@host"),
        ("mongodb+srv://u:p@cluster0.example.net/x?w=1", "mongodb+srv://***@cluster0.example.net/x?w=1"),
        ("redis://host:6379/0?password=hunter2", "redis://host:6379/0?password=***"),
        ("redis://host/0?db=1&Password=hunter2&x=1", "redis://host/0?db=1&Password=***&x=1"),
        (
            "mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:abc,X:y&w=1",
            "mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=***&w=1",
        ),
        (
            "mongodb://u:p@db/?tls=true&tlsCertificateKeyFilePassword=pw&w=1",
            "mongodb://***@db/?tls=true&tlsCertificateKeyFilePassword=***&w=1",
        ),
        ("https://api.example/x?access_token=abc&page=2", "https://api.example/x?access_token=***&page=2"),
        # nothing to hide
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
        ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
        ("https://www.solidot.org/story?sid=1", "https://www.solidot.org/story?sid=1"),
    ]:
        assert redact_uri(uri) == shown
        assert redact_uri(f"cannot reach {uri} (refused)") == f"cannot reach {shown} (refused)"
    # a URI with a password holding a space, then more text: the password goes, the text stays
    assert redact_uri("redis://:a b@h1:1: refused") == "redis://***@h1:1: refused"


def test_no_part_of_any_password_is_left() -> None:
    separators = ["@", ":", " ", "%", "%40", "/", "#", "?", "@:/ #?%", " @ "]
    for separator in separators:
        password = f"Alpha{separator}Bravo{separator}Charlie"
        for uri in (
            f"redis://:{password}@redis.internal:6379/0",
            f"redis://default:{password}@redis.internal:6379/0",
            f"mongodb://crawler:{password}@db1:27017,db2:27017/solidot?replicaSet=rs0",
            f"mongodb+srv://crawler:{password}@cluster0.example.net/solidot",
        ):
            shown = redact_uri(f"connecting to {uri} failed")
            assert shown.startswith("connecting to ") and shown.endswith(" failed"), shown
            assert "***@" in shown and "crawler" not in shown and "default" not in shown, shown
            for word in ("Alpha", "Bravo", "Charlie"):
                assert word not in shown, (uri, shown)


def test_several_uris_in_one_text_are_each_redacted_and_the_text_kept() -> None:
    text = (
        "workers use redis://:r3d!s@redis.internal:6379/0 and mongodb://crawler:m0ng@db1,db2/solidot"
        "?authSource=admin, fleet https://ops:sc@pyd@node1:6800 ok; plain http://www.solidot.org/ too"
    )
    assert redact_uri(text) == (
        "workers use redis://***@redis.internal:6379/0 and mongodb://***@db1,db2/solidot"
        "?authSource=admin, fleet https://***@node1:6800 ok; plain http://www.solidot.org/ too"
    )
    # URIs on separate lines keep their lines
    assert (
        redact_uri("a redis://:x y@h1:1\nb mongodb://u:z@h2:2\nc")
        == "a redis://***@h1:1\nb mongodb://***@h2:2\nc"
    )
    # text without URIs is unchanged
    for plain in ("", "no uri here", "mail ops@example.com", "mailto:ops@example.com", "a://"):
        assert redact_uri(plain) == plain
