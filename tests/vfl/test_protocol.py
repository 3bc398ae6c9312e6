"""Vertical logistic regression reaches the centralized optimum on the joined table, in the clear and under CKKS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import expit

from workbench.ledger import Protection
from workbench.parties import COORDINATOR
from workbench.vfl.protocol import GuestRows, Parties, train

HOSPITALS = ("north", "south")
L2 = 0.05
COEFFICIENT_TOLERANCE = 1e-4
GRADIENT_TOLERANCE = 1e-6
"""With l2 = 0.05 the loss is 0.05-strongly convex, so a gradient norm of 1e-6 puts every coefficient within 2e-5 of the
optimum; CKKS noise (and the arbiter's release grid) keeps the norm above about 5e-8 at this size."""


@dataclass(frozen=True)
class Sent:
    sender: str
    receiver: str
    kind: str
    protection: Protection
    row_level: bool
    payload: bytes


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def send(self, sender: str, receiver: str, kind: str, payload: bytes, protection: Protection, *, row_level: bool = False) -> bytes:
        self.sent.append(Sent(sender, receiver, kind, protection, row_level, bytes(payload)))
        return bytes(payload)


def _sites(seed: int = 3) -> tuple[dict[str, GuestRows], dict[str, np.ndarray]]:
    """Two hospitals (3 EHR columns and the intercept), 70 % of their patients matched with 2 vendor columns."""
    rng = np.random.default_rng(seed)
    guests, hosts = {}, {}
    for hospital, rows in zip(HOSPITALS, (180, 140)):
        ehr, vitals = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 2))
        logit = ehr @ [0.8, -0.5, 0.2] + vitals @ [1.2, -0.7] - 0.3
        labels = (rng.random(rows) < expit(logit)).astype(float)
        matched, train = rng.random(rows) < 0.7, rng.random(rows) < 0.75
        with_ones = np.column_stack([ehr, np.ones(rows)])
        guests[hospital] = GuestRows(with_ones[matched], labels[matched], train[matched], with_ones[~matched & train], labels[~matched & train])
        hosts[hospital] = vitals[matched]
    return guests, hosts


def _centralized(guests: dict[str, GuestRows], hosts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same objective on the joined training rows (vitals 0 where unmatched), solved by Newton's method to 1e-12."""
    blocks, labels = [], []
    for hospital, rows in guests.items():
        train = rows.matched_train
        blocks += [np.column_stack([rows.matched[train], hosts[hospital][train]]), np.column_stack([rows.unmatched, np.zeros((len(rows.unmatched), 2))])]
        labels += [rows.matched_labels[train], rows.unmatched_labels]
    X, y = np.vstack(blocks), np.concatenate(labels)
    penalty = np.full(X.shape[1], L2)
    penalty[3] = 0.0  # the intercept, last of the EHR block
    w = np.zeros(X.shape[1])
    for _ in range(50):
        p = expit(X @ w)
        gradient = X.T @ (p - y) / len(y) + penalty * w
        hessian = X.T @ (X * (p * (1 - p))[:, None]) / len(y) + np.diag(penalty)
        w -= np.linalg.solve(hessian, gradient)
        if np.abs(gradient).max() < 1e-13:
            break
    return w[:4], w[4:]


@pytest.mark.parametrize("arbiter", [None, pytest.param("keyholder", marks=pytest.mark.slow)], ids=["plain", "ckks"])
def test_vertical_training_equals_centralized_training_on_every_coefficient(arbiter: str | None) -> None:
    guests, hosts = _sites()
    recorder = Recorder()
    parties = Parties(HOSPITALS, "vendor", "aggregator", arbiter)
    trained = train(recorder.send, parties, guests, hosts, l2=L2, iterations=200, tolerance=GRADIENT_TOLERANCE)
    guest_w, host_w = _centralized(guests, hosts)
    assert trained.iterations < 200, f"stopped at the iteration cap with gradient norm {trained.gradient_norm:.2e}"
    np.testing.assert_allclose(trained.guest_weights, guest_w, atol=COEFFICIENT_TOLERANCE, rtol=0)
    np.testing.assert_allclose(trained.host_weights, host_w, atol=COEFFICIENT_TOLERANCE, rtol=0)
    for hospital, rows in guests.items():  # each hospital's held-out patients, scored by the final model (both blocks)
        held_out = ~rows.matched_train
        expected = rows.matched[held_out] @ trained.guest_weights + hosts[hospital][held_out] @ trained.host_weights
        np.testing.assert_allclose(trained.held_out_logits[hospital], expected, atol=1e-5, rtol=0)


def test_under_ckks_nothing_row_level_crosses_in_the_clear_and_the_vendor_never_sends_a_hospital_a_readable_vector() -> None:
    guests, hosts = _sites()
    recorder = Recorder()
    train(recorder.send, Parties(HOSPITALS, "vendor", "aggregator", "keyholder"), guests, hosts, l2=L2, iterations=5, tolerance=GRADIENT_TOLERANCE)
    row_level = [m for m in recorder.sent if m.row_level]
    assert {m.kind for m in row_level} == {"vfl.partial_logits", "vfl.logits", "vfl.probabilities", "vfl.residuals", "vfl.score_partials", "vfl.score_logits"}
    assert {m.protection for m in row_level} == {Protection.CKKS, Protection.MASKED}
    masked = [np.load(__import__("io").BytesIO(m.payload)) for m in row_level if m.protection is Protection.MASKED]
    assert masked and all(m.kind == "vfl.score_logits" and m.receiver in HOSPITALS for m in row_level if m.protection is Protection.MASKED)
    assert all(np.median(np.abs(values)) > 1e6 for values in masked), "the arbiter opens the held-out scores only under the hospital's mask"
    to_hospitals = {(m.kind, m.protection) for m in recorder.sent if m.sender == "vendor" and m.receiver in HOSPITALS}
    assert to_hospitals == {("vfl.layout", Protection.NONE), ("vfl.partial_logits", Protection.CKKS), ("vfl.score_partials", Protection.CKKS)}, (
        "the layout is two counts, the rest encrypted"
    )
    clear = [m for m in recorder.sent if m.protection is Protection.NONE]
    assert {m.kind for m in clear} <= {"vfl.public_key", "vfl.layout", "vfl.train_rows", "vfl.curvature", "vfl.step_size", "vfl.guest_step", "vfl.progress"}
    # what the arbiter opens of the gradients is masked: the vendor's own gradient never reaches it in the clear
    opened = [np.load(__import__("io").BytesIO(m.payload)) for m in recorder.sent if m.kind == "vfl.host_gradient" and m.protection is Protection.MASKED]
    assert opened and all(np.abs(values).max() > 1e6 for values in opened)


def test_in_the_clear_the_ledger_says_so() -> None:
    guests, hosts = _sites()
    recorder = Recorder()
    train(recorder.send, Parties(HOSPITALS, "vendor", "aggregator", None), guests, hosts, l2=L2, iterations=3, tolerance=GRADIENT_TOLERANCE)
    readable = {(m.sender, m.kind) for m in recorder.sent if m.row_level and m.protection is Protection.NONE}
    assert ("vendor", "vfl.partial_logits") in readable and ("north", "vfl.residuals") in readable
    assert not [m for m in recorder.sent if m.receiver == COORDINATOR and m.row_level]
