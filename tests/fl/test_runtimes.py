"""The embedded runtime: the real ClientApp and server logic, in process."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, RecordDict
from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents

from workbench.crypto.ckks import CKKSError
from workbench.errors import WorkbenchError
from workbench.fl.accounting_grid import Transfer
from workbench.fl.client_app import app as client_app
from workbench.fl.embedded_grid import EmbeddedGrid, _wire_copy, identity
from workbench.fl.encrypted import from_arrays, to_arrays
from workbench.fl.errors import FederationError, SiteBug
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded
from workbench.fl.server_app import serve


def test_rounds_metrics_and_transfers(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    rounds: list[int] = []
    transfers: list[Transfer] = []
    outcome = run_embedded(make_plan(), site_configs, lambda r, m: rounds.append(r), transfers.append)
    assert rounds == [1, 2, 3, 4, 5]
    assert set(outcome.history[5]) == {"big", "mid", "small"}
    assert all(0.5 < outcome.history[5][site]["auc"] <= 1 for site in outcome.history[5])
    kinds = [t.kind for t in transfers]
    assert kinds.count("fl.update") == 15 and kinds.count("fl.stats") == 3 and kinds.count("fl.model") == 30
    assert {t.receiver for t in transfers if t.kind == "fl.update"} == {"aggregator"}
    assert all(t.nbytes > 0 and len(t.digest) == 64 for t in transfers)


def test_embedded_runs_repeat_exactly(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    first = run_embedded(make_plan(batch_size=16), site_configs, lambda r, m: None, lambda t: None)
    again = run_embedded(make_plan(batch_size=16), site_configs, lambda r, m: None, lambda t: None)
    assert first.params == again.params and first.history == again.history


def test_fedprox_pulls_toward_the_global_model(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    fedavg = run_embedded(make_plan(local_epochs=5, batch_size=8), site_configs, lambda r, m: None, lambda t: None)
    fedprox = run_embedded(make_plan(local_epochs=5, batch_size=8, strategy="fedprox", proximal_mu=1.0), site_configs, lambda r, m: None, lambda t: None)
    assert not np.allclose(fedavg.params, fedprox.params)


def test_mlp_trains_federated(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    from workbench.models.model import ModelSpec

    outcome = run_embedded(make_plan(model=ModelSpec(family="mlp", hidden=4), rounds=10), site_configs, lambda r, m: None, lambda t: None)
    assert len(outcome.params) == 2 * 4 + 4 + 4 + 1
    assert outcome.history[10]["big"]["eval-loss"] < outcome.history[1]["big"]["eval-loss"]


def _run_with_failure(configs: list[dict[str, Any]], plan: FLPlan, stop_after_round: int, site: str) -> Any:
    """Take a site's node down once a round has finished, as a SuperNode dying mid-run."""
    grid = EmbeddedGrid(client_app, configs)
    node = next(n for n, context in grid.contexts.items() if context.node_config["party"] == site)

    def observe(server_round: int, metrics: dict[str, dict[str, float]]) -> None:
        if server_round == stop_after_round:
            grid.stopped.add(node)

    with identity(node_id=grid.server_node_id):
        return serve(grid, plan, observe, lambda t: None)


def test_a_site_that_dies_fails_the_run_naming_it(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    with pytest.raises(FederationError, match="round 3: site\\(s\\) mid disconnected; 2 remain and the recipe needs min_available_clients=3"):
        _run_with_failure(site_configs, make_plan(), stop_after_round=2, site="mid")


def test_a_site_that_dies_is_dropped_when_the_recipe_allows(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    outcome = _run_with_failure(site_configs, make_plan(min_available_clients=2), stop_after_round=2, site="small")
    assert set(outcome.history[2]) == {"big", "mid", "small"}
    assert set(outcome.history[5]) == {"big", "mid"}
    assert outcome.dropped == {3: ["small"], 4: ["small"], 5: ["small"]}


def test_a_client_error_is_reported_with_its_reason(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    broken = [dict(c, **{"data-path": c["data-path"] + ".missing"}) if c["party"] == "small" else c for c in site_configs]
    with pytest.raises(FederationError, match="federated statistics: 2 site\\(s\\) answered .*FileNotFoundError"):
        run_embedded(make_plan(), broken, lambda r, m: None, lambda t: None)


def test_fewer_sites_than_the_quorum_fail_fast(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    with pytest.raises(FederationError, match="2 of the 3 sites .* connected within 2 s; the recipe needs at least 3"):
        run_embedded(make_plan(), site_configs[:2], lambda r, m: None, lambda t: None)


def test_fraction_train_samples_the_same_sites_every_time(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan]) -> None:
    def trained(plan: FLPlan) -> list[list[str]]:
        transfers: list[Transfer] = []
        run_embedded(plan, site_configs, lambda r, m: None, transfers.append)
        updates = [t.sender for t in transfers if t.kind == "fl.update"]
        return [updates[i : i + 2] for i in range(0, len(updates), 2)]

    plan = make_plan(fraction_train=0.5, min_available_clients=1)
    first = trained(plan)
    assert first == trained(plan) and len(first) == 5
    assert len({tuple(r) for r in first}) > 1, "different sites are sampled in different rounds"


def test_ciphertexts_cross_flowers_wire_byte_for_byte() -> None:
    """The encrypted aggregate rides as raw bytes: through the embedded grid's protobuf copy and through the object
    tree a SuperLink moves (one ciphertext larger than Flower's array chunk), it arrives unchanged."""
    chunks = [os.urandom(FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE + 1), os.urandom(55_000)]
    record = to_arrays(chunks)
    with identity(node_id=1):
        message = Message(RecordDict({"arrays": record}), 1001, "train", group_id="1")
    assert from_arrays(_wire_copy(message).content.array_records["arrays"]) == chunks
    contents = {object_id: obj.deflate() for object_id, obj in get_all_nested_objects(record).items()}
    assert len(contents) > 3, "chunked as in deployment"
    inflated = inflate_object_from_contents(record.object_id, contents)
    assert isinstance(inflated, ArrayRecord) and from_arrays(inflated) == chunks


def test_an_array_that_is_not_a_ciphertext_is_refused() -> None:
    with pytest.raises(CKKSError, match="serialization type 'numpy.ndarray', not a ciphertext"):
        from_arrays(ArrayRecord({"ckks-00000": Array(np.zeros(3))}))


def test_a_bug_at_a_site_fails_the_run_as_a_bug_with_the_sites_stack(
    site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: a site's bug must not pass for a dropped site (min_available_clients=2 would allow one) or a user's mistake."""
    import workbench.fl.client_app as handlers

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in local training")

    monkeypatch.setattr(handlers, "sgd_epochs", broken)
    with pytest.raises(SiteBug, match="ZeroDivisionError: a bug in local training") as raised:
        run_embedded(make_plan(min_available_clients=2), site_configs, lambda r, m: None, lambda t: None)
    assert "Traceback" in str(raised.value) and not isinstance(raised.value, WorkbenchError)
