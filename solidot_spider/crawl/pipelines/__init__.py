"""Item pipelines: clean, validate and deduplicate stories on their way to the store."""
