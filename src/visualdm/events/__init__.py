"""Domain events: queued in a unit of work, published only after its commit succeeds."""
