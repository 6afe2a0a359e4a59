"""Game rules of characters that are not storage policy: experience thresholds per level."""

from __future__ import annotations

from bisect import bisect_right

# The fifth-edition SRD experience table: the XP at which each level (1-20) begins.
XP_THRESHOLDS = (
    0, 300, 900, 2_700, 6_500, 14_000, 23_000, 34_000, 48_000, 64_000,
    85_000, 100_000, 120_000, 140_000, 165_000, 195_000, 225_000, 265_000, 305_000, 355_000,
)  # fmt: skip


def level_for_xp(xp: int) -> int:
    """Return the level that `xp` experience points reach (1-20)."""
    return bisect_right(XP_THRESHOLDS, xp)
