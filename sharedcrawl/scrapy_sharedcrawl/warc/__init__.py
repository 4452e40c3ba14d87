"""WARC archive of every fetch, for any project on the framework: the raw pages kept, so a parser
fix can re-derive a crawl's output offline (the add-on installs the recorder; ``WARC_DIR`` turns
it on; warcio is needed only then).

Design notes: docs/framework-design.md#warc.
"""
