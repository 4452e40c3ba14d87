"""Test helpers for projects on the shared crawl, and the framework's own tests.

Nothing here is imported by a crawl (and the scrapyd egg leaves it out). Real servers, never mocks:

- ``redis_server``: a private redis-server on a free loopback port (``with redis_server() as server``);
- ``fixtures``: a pytest plugin with the fixtures ``redis_srv`` (one server a session) and ``redis_url``
  (running and empty). Not registered by itself: a conftest names it,
  ``pytest_plugins = ("scrapy_sharedcrawl.testing.fixtures",)``;
- ``scheduling``: one worker's scheduler opened as a crawl opens it, without a crawl running;
- ``processes``: waiting on a condition or a process's line, and the outcome check of a finished crawl.
"""
