"""HTTP plumbing shared by every router: dependencies, error mapping, rate limiting."""
