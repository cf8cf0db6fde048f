"""Delivery price: tiers of boxes, a price per tier, capped (all from settings)."""

import math

from app.core.config import get_settings


def price_for(boxes_count: int) -> tuple[int, int]:
    """Returns (boxes_multiplier, price_total): with defaults 1-8 → 35, 9-16 → 70, 17+ → 105."""
    s = get_settings()
    multiplier = min(math.ceil(boxes_count / s.price_tier_boxes), s.price_max_tiers)
    return multiplier, multiplier * s.price_tier_amount
