"""Which packages the distribution holds, and the one ``scrapyd-deploy`` builds.

Everything else about the project is declared in pyproject.toml. scrapyd-deploy builds
its egg with ``python setup.py bdist_egg`` (without this file it would write a setup.py
of its own into the checkout on every deploy). The egg a node runs holds what a worker imports:
the crawler and the shared-crawl framework it runs on, ``scrapy_sharedcrawl``, which is a
distribution of its own (``sharedcrawl/``) installed beside the project everywhere else, so it is
mapped in for the egg only, without its test helpers (``scrapy_sharedcrawl.testing``). The replica
(``solidot_replica``) is a test tool, installed with the project for its tests and benchmarks,
never deployed.
"""

import sys

from setuptools import find_packages, setup

CRAWLER = ["solidot_spider", "solidot_spider.*"]
TEST_TOOLS = ["solidot_replica", "solidot_replica.*"]
FRAMEWORK = find_packages(
    "sharedcrawl", include=["scrapy_sharedcrawl", "scrapy_sharedcrawl.*"], exclude=["scrapy_sharedcrawl.testing"]
)

if "bdist_egg" in sys.argv:
    setup(
        packages=find_packages(include=CRAWLER) + FRAMEWORK,
        package_dir={"scrapy_sharedcrawl": "sharedcrawl/scrapy_sharedcrawl"},
    )
else:
    setup(packages=find_packages(include=CRAWLER + TEST_TOOLS))
