"""Every selector the parser uses, named after what it selects.

Story selectors are relative to the story block: comments reuse ``ct_tittle``,
``bg_htit``, ``h2`` and ``talk_time`` (see ``shared/solidot-site.md`` §3), so
nothing here is page-wide except the sidebar view counter and the comments.
"""

#: The story block: the first ``div.block_m`` of ``#center`` (list pages: every one).
STORY_BLOCKS = "#center > div.block_m"
STORY_BLOCK_FALLBACK = "div.block_m"
#: Inside a story block.
TITLE_H2 = "div.ct_tittle > div.bg_htit > h2"  # the site spells it "tittle"
BYLINE = "./div[contains(concat(' ', normalize-space(@class), ' '), ' talk_time ')]"
TOPIC_LINKS = "div.icon_float > a"
AUTHOR_LINK = "./a[starts-with(@href, '/~')]"
AUTHOR_UID_TEXT = "./a[starts-with(@href, '/~')][1]/following-sibling::text()[1]"
BYLINE_OWN_TEXT = "./text()"
DEPARTMENT = "./b"
BODY = "div.p_mainnew"
#: Page-wide.
VIEW_COUNTER = "div.block_r div.content b"
JSON_LD = "script[type='application/ld+json']::text"
COMMENT_COUNT = "div.statement b::text"
COMMENT_ROOT_LIST = "div.reply_list ul.reply_ul"
FOOTER = "#footer"
#: Inside a comment ``li``.
COMMENT_BOX = "./div[contains(concat(' ', normalize-space(@class), ' '), ' list_com ')]"
COMMENT_REPLIES = "./ul[contains(@class, 'reply_ul')] | ./div/ul[contains(@class, 'reply_ul')]"
COMMENT_ITEMS = "./li"
COMMENT_TITLE = "div.bg_htit h2"
COMMENT_AUTHOR = "div.talk_time a"
COMMENT_BYLINE = "div.talk_time"
COMMENT_TEXT = "div.p_text"
#: RSS.
RSS_ITEM_LINKS = "//item/link/text()"

#: The page-wide lookups above as XPath from the page's root that test the few elements they end
#: on (a ``div.block_m``, a ``b``, a ``ul``) against their ancestors, instead of walking every
#: element for the ones they start from: the same nodes from the root (tests/site/test_fast_paths.py),
#: in a third less time.
_CLASS = "@class and contains(@class, '{0}') and contains(concat(' ', normalize-space(@class), ' '), ' {0} ')"
_CONTENT, _BLOCK_R = _CLASS.format("content"), _CLASS.format("block_r")
ROOT_STORY_BLOCKS = f"descendant-or-self::div[{_CLASS.format('block_m')}][parent::*[@id = 'center']]"
ROOT_VIEW_COUNTER = f"descendant-or-self::b[ancestor::div[{_CONTENT}][ancestor::div[{_BLOCK_R}]]]"
ROOT_COMMENT_COUNT = f"descendant-or-self::b[ancestor::div[{_CLASS.format('statement')}]]/text()"
ROOT_COMMENT_ROOT_LIST = (
    f"descendant-or-self::ul[{_CLASS.format('reply_ul')}][ancestor::div[{_CLASS.format('reply_list')}]]"
)
