"""Where stories are kept: MongoDB documents (``documents``) and the client that writes them (``mongo``).

Nothing here imports Scrapy: the item pipeline in ``solidot_spider.pipelines.store``
drives it, and tools or tests can use it on their own.
"""
