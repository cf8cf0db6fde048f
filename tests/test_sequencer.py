"""The low-water mark of the SSE fan-out: in id order, nothing skipped that may still commit."""

from app.realtime.sequencer import ABANDONED_TTL_SECONDS, SETTLE_SECONDS, Sequencer, Snapshot


def ids(*values: int) -> list[tuple[int, str]]:
    return [(v, f"e{v}") for v in values]


def test_contiguous_ids_go_out_at_once_in_order() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=5)
    out = seq.accept(ids(12, 11, 13), now=0, snapshot=None)
    assert out.in_order == ["e11", "e12", "e13"]
    assert out.late == []
    assert seq.low == 13


def test_an_id_above_a_gap_waits_until_the_gap_commits() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=5)
    assert seq.accept(ids(12), now=0, snapshot=None).in_order == []
    assert seq.has_gaps
    assert seq.accept(ids(12), now=1, snapshot=None).in_order == [], "refetch is not a release"
    out = seq.accept(ids(11, 12, 13), now=2, snapshot=None)
    assert out.in_order == ["e11", "e12", "e13"]
    assert not seq.has_gaps


def test_a_gap_older_than_the_grace_period_is_given_up_and_a_late_commit_still_goes_out() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=5)
    seq.accept(ids(12), now=0, snapshot=None)
    out = seq.accept([], now=5, snapshot=None)
    assert out.in_order == ["e12"]
    assert seq.recheck_ids() == [11]
    late = seq.accept(ids(11, 13), now=6, snapshot=None)
    assert late.in_order == ["e13"]
    assert late.late == ["e11"]
    assert seq.recheck_ids() == []
    assert seq.accept(ids(11), now=7, snapshot=None).late == [], "never twice"


def test_on_postgres_a_rolled_back_id_is_proved_gone_before_the_grace_period() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=60)
    seq.accept(ids(12), now=0, snapshot=Snapshot(xmin=100, xmax=105))
    # A snapshot taken after the settle time fixes the horizon: transactions below xmax 107.
    assert seq.accept([], now=SETTLE_SECONDS, snapshot=Snapshot(xmin=100, xmax=107)).in_order == []
    # Transaction 104 (holding id 11) is still running: xmin has not passed 107.
    assert seq.accept([], now=1, snapshot=Snapshot(xmin=104, xmax=110)).in_order == []
    # Every transaction below 107 has ended and id 11 was not in the fetch: rolled back.
    assert seq.accept([], now=2, snapshot=Snapshot(xmin=107, xmax=110)).in_order == ["e12"]


def test_ids_at_or_below_the_mark_are_never_released_again() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=5)
    assert seq.accept(ids(9, 10, 11), now=0, snapshot=None).in_order == ["e11"]
    assert seq.accept(ids(11), now=1, snapshot=None).in_order == []


def test_abandoned_ids_are_forgotten_after_a_while() -> None:
    seq: Sequencer[str] = Sequencer(low=10, grace=1, abandoned={5: 0.0})
    assert seq.recheck_ids() == [5]
    seq.accept([], now=ABANDONED_TTL_SECONDS + 1, snapshot=None)
    assert seq.recheck_ids() == []
