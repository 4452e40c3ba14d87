"""Which packages the distribution holds, and the one ``scrapyd-deploy`` builds.

Everything else about the project is declared in pyproject.toml. scrapyd-deploy builds
its egg with ``python setup.py bdist_egg`` (without this file it would write a setup.py
of its own into the checkout on every deploy). The egg a node runs holds the crawler
and the shared-crawl framework it runs on (``scrapy_sharedcrawl``) only: the replica (``solidot_replica``) is a test tool, installed with the project for
its tests and benchmarks, never deployed.
"""

import sys

from setuptools import find_packages, setup

CRAWLER = ["solidot_spider", "solidot_spider.*", "scrapy_sharedcrawl", "scrapy_sharedcrawl.*"]
TEST_TOOLS = ["solidot_replica", "solidot_replica.*"]

setup(packages=find_packages(include=CRAWLER if "bdist_egg" in sys.argv else CRAWLER + TEST_TOOLS))
