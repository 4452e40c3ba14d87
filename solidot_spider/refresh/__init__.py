"""Keeping the archive current: when each stored story is due again (``policy``), and picking the
due ones from MongoDB (``selection``) for ``solidot-crawl seed --refresh`` and ``-a refresh=true``."""
