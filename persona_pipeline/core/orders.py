"""What counts as an order: one rule, stated once, for the cohorts' SQL and for the Analysis.

An order counts when it was not cancelled and the customer kept paying for something: its net amount
(amount minus refunded) is above zero, and it counts at that net amount. Cancelled orders, orders returned in
full and orders of zero amount are reported beside the figures, never mixed into them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the SQL models import the rule's SQL text; `list` and `show` need no pandas (0.2 s)
    import pandas as pd


class OrderStatus(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    RETURNED = "returned"  # in full or in part: the refunded amount says how much


# How a status arrives in files; a blank status is a completed order.
STATUS_WORDS = {
    **dict.fromkeys(("", "completed", "complete", "paid", "shipped", "delivered"), OrderStatus.COMPLETED),
    **dict.fromkeys(("cancelled", "canceled", "void", "voided"), OrderStatus.CANCELLED),
    **dict.fromkeys(("returned", "return", "refunded"), OrderStatus.RETURNED),
}


def net_amount_sql(alias: str) -> str:
    """The amount an order counts at, as SQL over the orders table aliased `alias`."""
    return f"({alias}.amount - COALESCE({alias}.refunded, 0))"


def counted_order_sql(alias: str) -> str:
    """The rule as a SQL condition over the orders table aliased `alias` (the same on SQLite and PostgreSQL)."""
    return (
        f"({alias}.amount IS NOT NULL AND COALESCE({alias}.status, '{OrderStatus.COMPLETED}') "
        f"<> '{OrderStatus.CANCELLED}' AND {net_amount_sql(alias)} > 0)"
    )


def net_amounts(amount: pd.Series, refunded: pd.Series) -> np.ndarray:
    """(n,) float: amount minus refunded (a missing refund is none)."""
    return amount.to_numpy(dtype="float64", na_value=np.nan) - refunded.fillna(0).to_numpy(
        dtype="float64", na_value=np.nan
    )


def counted(status: pd.Series, amount: pd.Series, refunded: pd.Series) -> np.ndarray:
    """(n,) bool: the rule in Python, for rows read from the orders table."""
    net = net_amounts(amount, refunded)
    cancelled = status.fillna(OrderStatus.COMPLETED).astype(str).to_numpy() == OrderStatus.CANCELLED
    with np.errstate(invalid="ignore"):
        return ~cancelled & (net > 0)
