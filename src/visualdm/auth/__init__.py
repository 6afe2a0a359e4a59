"""Authentication: password hashes, JWTs, token revocation, login throttle, API rate limit."""
