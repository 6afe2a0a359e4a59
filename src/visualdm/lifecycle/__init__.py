"""Lifecycle jobs (purge, archive, anonymize), their runner and scheduler, and the quest queue."""
