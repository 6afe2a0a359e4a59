"""Imports every ORM module so Base.metadata knows all tables (for Alembic and test schemas)."""

from __future__ import annotations

from sqlalchemy import MetaData

from visualdm.audit import models as _audit
from visualdm.characters import models as _characters
from visualdm.db.base import Base
from visualdm.events import outbox as _outbox
from visualdm.factions import models as _factions
from visualdm.lifecycle import models as _lifecycle
from visualdm.quests import models as _quests
from visualdm.spatial import models as _spatial
from visualdm.users import models as _users

MODELS = (_audit, _characters, _factions, _lifecycle, _outbox, _quests, _spatial, _users)


def metadata() -> MetaData:
    """Return the metadata of every table."""
    return Base.metadata
