"""Grids of a run that several experiment types share: log-spaced checkpoints and pattern counts P = round(αN)."""

from __future__ import annotations

import math


def log_schedule(total: int, per_decade: int) -> list[int]:
    """Checkpoints 0, then log-spaced integers from 1 to ``total`` (``per_decade`` a decade), and ``total``."""
    n = math.ceil(math.log10(total) * per_decade)
    return sorted(s for s in {0, *(round(10 ** (i / per_decade)) for i in range(n)), total} if s <= total)


def sizes(N: int, alphas) -> list[int]:
    """Pattern counts P = round(αN), at least 1, for each α in the order given."""
    return [max(1, round(a * N)) for a in alphas]
