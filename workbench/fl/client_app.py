"""The hospitals' Flower ClientApp: federated statistics, local training, local evaluation.

Runs unchanged in-process, under Ray, or in a SuperNode's ClientApp process.
Everything it needs arrives in the message (the plan, the global model) or in
its node config (which party it is, where that party's data is).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import tenseal as ts
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from workbench.context import derive_rng
from workbench.crypto import ckks
from workbench.crypto import secure_sum as ss
from workbench.fl import moments
from workbench.fl.encrypted import from_arrays, is_encrypted
from workbench.fl.plan import FLPlan
from workbench.fl.site_data import SiteData, load_site
from workbench.models.metrics import binary_metrics
from workbench.models.model import sgd_epochs
from workbench.models.standardize import Standardizer
from workbench.models.standardize import moments as feature_moments

KEY_HOLDER_ROLE = "key_holder"


@lru_cache(maxsize=8)
def _ckks_context(path: str) -> ts.Context:
    """This node's CKKS context (secret under custody clients and at the key holder, public otherwise), read once."""
    return ckks.load_context(Path(path).read_bytes())


def _site(msg: Message, context: Context) -> tuple[FLPlan, str, SiteData]:
    plan = FLPlan.model_validate_json(str(msg.content["config"]["plan"]))
    party = str(context.node_config["party"])
    data = load_site(str(context.node_config["data-path"]), party, plan.features.model_dump_json(), plan.label)
    return plan, party, data


def _standardizer(config: ConfigRecord, plan: FLPlan, context: Context) -> tuple[Standardizer, float]:
    """The shared standardizer and the pooled number of training rows.

    Custody clients: the aggregator cannot read the pooled moments, so every message carries them encrypted and
    the site decrypts them (once per process: the same ciphertext comes every round). Otherwise they are plain.
    """
    if moments.CONFIG_KEY in config:
        chunks = tuple(cast(list[bytes], config[moments.CONFIG_KEY]))
        return _decrypted_moments(str(context.node_config["ckks-context-path"]), chunks, len(plan.features.names()), len(plan.parties))
    standardizer = Standardizer(np.asarray(config["center"], dtype=float), np.asarray(config["scale"], dtype=float))
    return standardizer, float(cast(float, config.get("total-rows", 0.0)))


@lru_cache(maxsize=4)
def _decrypted_moments(context_path: str, chunks: tuple[bytes, ...], features: int, parties: int) -> tuple[Standardizer, float]:
    return moments.decrypt(_ckks_context(context_path), chunks, features, parties)


def _global_params(msg: Message, plan: FLPlan, context: Context) -> np.ndarray:
    """The global model: plain, or the encrypted weighted sum [sum w_k theta_k..., sum w_k] decrypted here."""
    arrays = msg.content["arrays"]
    if not is_encrypted(arrays):
        return arrays["params"].numpy()
    return _decrypted_model(str(context.node_config["ckks-context-path"]), tuple(from_arrays(arrays)), plan.param_count())


@lru_cache(maxsize=4)
def _decrypted_model(context_path: str, chunks: tuple[bytes, ...], count: int) -> np.ndarray:
    """Decrypt an aggregate once: a round's evaluation and the next round's training carry the same one."""
    values = ckks.decrypt(_ckks_context(context_path), chunks, count + 1)
    return values[:count] / values[count]


def query(msg: Message, context: Context) -> Message:
    """Sites answer with their statistics; a key-holder node says who it is, or decrypts a masked sum."""
    if context.node_config.get("role") == KEY_HOLDER_ROLE:
        return _key_holder(msg, context)
    return statistics(msg, context)


def _key_holder(msg: Message, context: Context) -> Message:
    """The key holder's only service: decrypt what the aggregator sends. By protocol that is a masked sum."""
    config = msg.content["config"]
    identity = ConfigRecord({"party": str(context.node_config["party"]), "role": KEY_HOLDER_ROLE})
    if config.get("op") != "decrypt":
        return Message(content=RecordDict({"identity": identity}), reply_to=msg)
    secret = _ckks_context(str(context.node_config["ckks-context-path"]))
    if "parties" in config:  # exact moments: round here, so the aggregator gets integers and no decryption noise
        values = ss.decrypt_masked(secret, list(config["ckks"]), int(config["count"]), moments.CODEC, int(config["parties"]))
    else:
        values = ckks.release(ckks.decrypt(secret, list(config["ckks"]), int(config["count"])))
    return Message(content=RecordDict({"identity": identity, "masked": ArrayRecord({"values": _array(values)})}), reply_to=msg)


def statistics(msg: Message, context: Context) -> Message:
    """Count, sums and sums of squares of the training features: enough to standardize as pooled data would.

    Plain aggregation sends them in the clear; CKKS aggregation encrypts them as exact fixed-point limbs.
    """
    plan, party, data = _site(msg, context)
    count, sums, squares = feature_moments(data.X_train)
    if plan.aggregation == "ckks":
        chunks = moments.encrypt(_ckks_context(str(context.node_config["ckks-context-path"])), party, plan.features.names(),
                                 len(plan.parties), count, sums, squares)
        content = RecordDict({"encrypted": ConfigRecord({"ckks": chunks}), "identity": ConfigRecord({"party": party})})
        return Message(content=content, reply_to=msg)
    content = RecordDict({
        "arrays": ArrayRecord({"sums": _array(sums), "squares": _array(squares)}),
        "metrics": MetricRecord({"num-examples": int(count)}),
        "identity": ConfigRecord({"party": party}),
    })
    return Message(content=content, reply_to=msg)


def train(msg: Message, context: Context) -> Message:
    plan, party, data = _site(msg, context)
    config = msg.content["config"]
    family = plan.model.build()
    standardizer, total_rows = _standardizer(config, plan, context)
    Z = standardizer.apply(data.X_train)
    start = _global_params(msg, plan, context)
    rng = derive_rng(plan.seed, "fl", party, f"round-{int(config['server-round'])}")
    params = sgd_epochs(family, start, Z, data.y_train, l2=plan.model.l2, learning_rate=plan.learning_rate,
                        epochs=plan.local_epochs, batch_size=plan.batch_size, rng=rng, proximal_mu=float(config["proximal-mu"]))
    loss, _ = family.loss_and_grad(params, Z, data.y_train, plan.model.l2)
    if plan.aggregation == "ckks":
        # Weight w_k = n_k / n travels inside the ciphertext, so sites that drop out are corrected for
        # at decryption and the aggregator never learns a site's size or its update.
        weight = len(data.y_train) / total_rows
        if plan.key_holder:  # the key holder's view of the masked sum is bounded only for bounded values
            params = np.clip(params, -ckks.VALUE_BOUND, ckks.VALUE_BOUND)
        chunks = ckks.encrypt(_ckks_context(str(context.node_config["ckks-context-path"])), np.append(weight * params, weight))
        content = RecordDict({"encrypted": ConfigRecord({"ckks": chunks}), "metrics": MetricRecord({"train-loss": loss})})
        return Message(content=content, reply_to=msg)
    content = RecordDict({
        "arrays": ArrayRecord({"params": _array(params)}),
        "metrics": MetricRecord({"num-examples": len(data.y_train), "train-loss": loss}),
    })
    return Message(content=content, reply_to=msg)


def evaluate(msg: Message, context: Context) -> Message:
    """Score the global model on this site's held-out rows; only the scores leave."""
    plan, _, data = _site(msg, context)
    family = plan.model.build()
    params = _global_params(msg, plan, context)
    Z = _standardizer(msg.content["config"], plan, context)[0].apply(data.X_test)
    loss, _ = family.loss_and_grad(params, Z, data.y_test, 0.0)
    scores = binary_metrics(data.y_test, family.predict_proba(params, Z))
    metrics = {"num-examples": len(data.y_test), "eval-loss": loss}
    if scores["auc"] is not None:
        metrics["auc"] = scores["auc"]
    return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


def build_client_app(mods: list[Mod] | None = None) -> ClientApp:
    """The ClientApp with the workbench's handlers; `mods` let a runtime adapt the node's identity."""
    client = ClientApp(mods=mods or [])
    client.query()(query)
    client.train()(train)
    client.evaluate()(evaluate)
    return client


app = build_client_app()


def _array(values: np.ndarray) -> Array:
    return Array(np.ascontiguousarray(values, dtype=np.float64))
