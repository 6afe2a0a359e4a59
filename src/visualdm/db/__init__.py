"""Database plumbing shared by every domain: base classes, engine, unit of work, migrations."""
