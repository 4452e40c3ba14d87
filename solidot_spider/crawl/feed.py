"""The JSON Lines feed exporter: Scrapy's, with stories turned into JSON without itemadapter's detour.

Scrapy's exporter adapts the story, then its JSON encoder meets every topic and
comment as an unknown object and adapts each again (≈ 0.1 ms a story, two thirds of
the export's time). A :class:`~solidot_spider.site.items.Story` is converted once with
:func:`~solidot_spider.site.items.item_dict`, which gives the same dict, so the
lines are byte for byte what Scrapy writes. Anything else — another item type,
``FEED_EXPORT_FIELDS`` set — takes Scrapy's own path.
"""

from __future__ import annotations

from typing import Any

from scrapy.exporters import JsonLinesItemExporter
from scrapy.utils.python import to_bytes

from solidot_spider.site.items import Story, item_dict


class StoryJsonLinesExporter(JsonLinesItemExporter):
    """``jsonlines`` / ``jsonl`` / ``jl`` feeds (see ``FEED_EXPORTERS`` in settings)."""

    def export_item(self, item: Any) -> None:
        if type(item) is not Story or self.fields_to_export is not None:
            super().export_item(item)
            return
        # Story fields have no serializers and are always all set: get_serialized_fields
        # would yield every field, in order, as it is
        self.file.write(to_bytes(self.encoder.encode(item_dict(item)) + "\n", self.encoding))
