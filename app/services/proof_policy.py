"""The per-store proof policy as pure decisions: what an outcome still misses, what is collected."""

from collections.abc import Collection
from typing import Any

from app.core.config import Settings
from app.core.errors import InvalidInput
from app.db.models import OrderStatus, ProofKind
from app.schemas.proofs import OutcomePolicy, ProofPolicy, Requirement


def policy_from(raw: dict[str, Any] | None) -> ProofPolicy:
    # None (every store before migration 0007, and any store an admin never set): the defaults,
    # everything optional, so no order that could end before the policy existed is blocked now.
    return ProofPolicy.model_validate(raw or {})


def _outcome(policy: ProofPolicy, outcome: str) -> OutcomePolicy:
    return policy.delivered if outcome == OrderStatus.DELIVERED else policy.failed


def required_kinds(policy: ProofPolicy, *, outcome: str, reason_code: str | None) -> list[str]:
    rules = _outcome(policy, outcome)
    required = [kind for kind in ProofKind if getattr(rules, kind) == Requirement.REQUIRED]
    if (
        outcome == OrderStatus.FAILED
        and reason_code in policy.failed.photo_required_for
        and ProofKind.PHOTO not in required
    ):
        required.insert(0, ProofKind.PHOTO)
    return [str(kind) for kind in required]


def missing_proofs(
    policy: ProofPolicy, *, outcome: str, reason_code: str | None, uploaded: Collection[str]
) -> list[str]:
    """The kinds the outcome requires that no drop-off proof of the order is of; [] when none."""
    required = required_kinds(policy, outcome=outcome, reason_code=reason_code)
    return [kind for kind in required if kind not in uploaded]


def collects(policy: ProofPolicy, kind: str) -> bool:
    """Whether a drop-off proof of this kind can count for either outcome (else it is refused)."""
    if kind == ProofKind.PHOTO and policy.failed.photo_required_for:
        return True
    return any(
        getattr(rules, kind) != Requirement.OFF for rules in (policy.delivered, policy.failed)
    )


def check_policy_reasons(policy: ProofPolicy, settings: Settings) -> None:
    unknown = [c for c in policy.failed.photo_required_for if c not in settings.failure_reasons]
    if unknown:
        raise InvalidInput(f"photo_required_for names unknown reason codes: {', '.join(unknown)}")
