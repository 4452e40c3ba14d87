"""Trust the bytes over a wrong ``charset`` header on the site's own pages.

Solidot serves UTF-8. When a response claims another charset (a misconfigured
proxy, a replica fault) Scrapy believes the header and the Chinese text turns
to mojibake, silently. Bytes that decode as UTF-8 and hold non-ASCII text are
UTF-8 (other encodings almost never form valid UTF-8 by chance), so such a
response is re-read as UTF-8 and the correction is counted.
"""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response, TextResponse

from solidot_spider.site.urls import SiteMap

logger = logging.getLogger(__name__)


class SiteCharsetMiddleware:
    """Re-read the site's non-UTF-8-labelled text responses as UTF-8 when they are UTF-8."""

    def __init__(self, crawler: Crawler, site: SiteMap) -> None:
        self.crawler = crawler
        self.site = site
        self._warned = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteCharsetMiddleware:
        if not crawler.settings.getbool("SOLIDOT_FORCE_UTF8"):
            raise NotConfigured
        return cls(crawler, SiteMap.from_base_url(crawler.settings.get("SOLIDOT_BASE_URL")))

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, TextResponse) or self.site.host_label(response.url) is None:
            return response
        if response.encoding.replace("-", "").lower() == "utf8" or response.body.isascii():
            return response
        try:
            response.body.decode("utf-8")
        except UnicodeDecodeError:
            return response
        self.crawler.stats.inc_value("solidot/charset_corrected")
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s claims charset %s but is UTF-8; reading it as UTF-8 "
                "(later ones are counted in solidot/charset_corrected)",
                response.url,
                response.encoding,
            )
        return response.replace(encoding="utf-8")
