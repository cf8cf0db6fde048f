"""Releases committed event ids in id order without skipping one that may still commit.

Event ids are allocated when the row is inserted, not when its transaction commits: a transaction
holding id 10 can commit after one holding id 11. A reader that remembered only "the highest id
seen" would pass 10 by and never deliver it. So the fan-out keeps a low-water mark instead:

- `low`: every id at or below it was released, or given up on;
- `pending`: ids above a gap, fetched and held back until the gap resolves;
- `gaps`: missing ids below the highest id fetched, each remembered with when it was first seen.

A gap resolves when its id shows up (released in order), or when it is proved or presumed to be
gone: on Postgres once every transaction that was running when the gap was seen has finished
(`pg_snapshot_xmin` passed the snapshot's `xmax` — the id was rolled back), otherwise after a grace
period (`SSE_GAP_GRACE_SECONDS`). An id given up on is "abandoned": it is re-checked on every fetch
for a while, and if it does commit late it is still delivered, marked late (out of order).
"""

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# A gap's xmax is taken from a snapshot at least this long after the gap was seen: a transaction
# takes its xid at its first write, which in this codebase precedes the event insert, but the
# margin also covers a transaction whose first write is the event itself.
SETTLE_SECONDS = 0.1
# Ids given up on are re-checked this long (and at most this many), then forgotten.
ABANDONED_TTL_SECONDS = 600.0
ABANDONED_MAX = 1000


@dataclass(frozen=True)
class Snapshot:
    """pg_current_snapshot() bounds: no transaction with xid < xmin is still running."""

    xmin: int
    xmax: int


@dataclass
class _Gap:
    first_seen: float
    xmax: int | None = None


@dataclass
class Released(Generic[T]):
    in_order: list[T] = field(default_factory=list)
    late: list[T] = field(default_factory=list)


class Sequencer(Generic[T]):
    def __init__(self, *, low: int, grace: float, abandoned: dict[int, float] | None = None):
        self.low = low
        self.grace = grace
        self.pending: dict[int, T] = {}
        self.gaps: dict[int, _Gap] = {}
        self.abandoned: dict[int, float] = dict(abandoned or {})

    @property
    def has_gaps(self) -> bool:
        return bool(self.gaps)

    def recheck_ids(self) -> list[int]:
        """Ids below the mark that may still commit: the fetch asks for them explicitly."""
        return sorted(self.abandoned)

    def accept(
        self, found: list[tuple[int, T]], *, now: float, snapshot: Snapshot | None
    ) -> Released[T]:
        """Takes what one fetch returned (taken after `snapshot`) and returns what may go out."""
        out: Released[T] = Released()
        for event_id, item in sorted(found, key=lambda pair: pair[0]):
            if event_id <= self.low:
                if self.abandoned.pop(event_id, None) is not None:
                    out.late.append(item)
                continue  # already released
            self.pending[event_id] = item
            self.gaps.pop(event_id, None)
        top = max(self.pending, default=self.low)
        for missing in range(self.low + 1, top):
            if missing not in self.pending and missing not in self.gaps:
                self.gaps[missing] = _Gap(first_seen=now)
        self._resolve(now, snapshot)
        while self.low < top and self.low + 1 not in self.gaps:
            self.low += 1
            item_or_none = self.pending.pop(self.low, None)
            if item_or_none is not None:
                out.in_order.append(item_or_none)
        self._forget(now)
        return out

    def _resolve(self, now: float, snapshot: Snapshot | None) -> None:
        for gap_id, gap in list(self.gaps.items()):
            gone = now - gap.first_seen >= self.grace
            if snapshot is not None and not gone:
                if gap.xmax is not None and snapshot.xmin >= gap.xmax:
                    # Every transaction that could hold this id has ended and the fetch (taken
                    # after this snapshot) did not see it: it was rolled back.
                    gone = True
                elif gap.xmax is None and now - gap.first_seen >= SETTLE_SECONDS:
                    gap.xmax = snapshot.xmax
            if gone:
                del self.gaps[gap_id]
                self.abandoned[gap_id] = now

    def _forget(self, now: float) -> None:
        expired = [i for i, at in self.abandoned.items() if now - at > ABANDONED_TTL_SECONDS]
        for event_id in expired:
            del self.abandoned[event_id]
        if len(self.abandoned) > ABANDONED_MAX:
            for event_id in sorted(self.abandoned)[: len(self.abandoned) - ABANDONED_MAX]:
                del self.abandoned[event_id]
