"""The Cache System: read-through and write-through caching, tags, last-writer-wins."""
