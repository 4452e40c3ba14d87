"""The fleet: scrapyd nodes running the crawl's workers, seen and scaled through scrapyd's HTTP API.

:mod:`.nodes` says which nodes there are (scrapy.cfg's deploy targets, or URLs),
:mod:`.api` talks to one node, :mod:`.plan` decides where workers start and
which stop (pure), and :mod:`.fleet` puts them together for the ``workers`` command
(``sharedcrawl workers``, or a project tool's registration of it).
"""
