"""`aggregation: none`: sites send their moments and updates in the clear, and Flower averages them.

The baseline every other kind is measured against: nothing is protected, so the aggregator sees every
site's statistics and update (the ledger says `none`), and holds the global model at every round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from workbench.fl.aggregation.base import (
    Aggregated,
    Aggregation,
    AggregatorEnd,
    FlowerAggregate,
    PooledMoments,
    SiteNode,
    UpdateSight,
    float_array,
    register,
)
from workbench.ledger import Protection
from workbench.models.standardize import Standardizer

if TYPE_CHECKING:
    import numpy as np
    from flwr.app import ArrayRecord, Message, RecordDict


@register
class Plain(Aggregation):
    name = "none"
    title = "plain updates"
    update_protection = Protection.NONE
    reads_updates = UpdateSight.EACH

    @classmethod
    def describe(cls, server: str, summary: Mapping[str, Any]) -> str:
        return (
            f"Model updates travelled in the clear (protection: {summary['update_protection']}): the aggregator "
            f"'{server}' saw each site's update in every round."
        )

    def site_moments(self, site: SiteNode, count: float, sums: np.ndarray, squares: np.ndarray) -> RecordDict:
        from flwr.app import ArrayRecord, MetricRecord, RecordDict

        return RecordDict(
            {"arrays": ArrayRecord({"sums": float_array(sums), "squares": float_array(squares)}), "metrics": MetricRecord({"num-examples": int(count)})}
        )

    def site_update(self, site: SiteNode, params: np.ndarray, rows: int, total_rows: float, metrics: dict[str, float]) -> RecordDict:
        from flwr.app import ArrayRecord, MetricRecord, RecordDict

        return RecordDict({"arrays": ArrayRecord({"params": float_array(params)}), "metrics": MetricRecord({"num-examples": rows, **metrics})})

    def pool_moments(self, end: AggregatorEnd, replies: list[Message]) -> PooledMoments:
        import numpy as np

        count = sum(float(cast(int, r.content["metrics"]["num-examples"])) for r in replies)  # an int, as site_moments sent it
        sums = np.sum([_arrays(r)["sums"].numpy() for r in replies], axis=0)
        squares = np.sum([_arrays(r)["squares"].numpy() for r in replies], axis=0)
        return PooledMoments(Standardizer.from_moments(count, sums, squares), count)

    def combine(self, end: AggregatorEnd, replies: list[Message], flower: FlowerAggregate) -> Aggregated:
        return flower.average(replies)


def _arrays(reply: Message) -> ArrayRecord:
    """The moments `site_moments` sent: Flower types a record dict's values as any of its three record kinds."""
    return cast("ArrayRecord", reply.content["arrays"])
