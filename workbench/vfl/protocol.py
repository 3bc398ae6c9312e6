"""Hybrid vertical logistic regression: the hospitals' EHR block, federated across them, and the vendor's vitals block.

The model is one logistic regression on [EHR features, 1, vendor features]. Each hospital holds the EHR block
(the same weights at every hospital, with the intercept) and its labels; the vendor holds the vitals block and its
rows aligned with each hospital's matched patients by `psi_link`'s opaque link ids. Unmatched patients have no
vitals: their vendor part is 0 (the vendor's mean, after centring), so they train the EHR block only.

Training is full-batch gradient descent on the exact mean log-loss plus l2/2 |w|^2 (intercept unpenalized), the
objective `models.logistic.Logistic` minimizes, so it reaches the centralized optimum on the joined table. The
exchange is FATE's coordinated (arbiter) hetero-LR, with one change: FATE replaces the sigmoid by its Taylor
expansion so that no one decrypts a logit; here the arbiter decrypts the joint logits and applies the exact
sigmoid, which is what lets vertical training equal centralized training, and is what the arbiter learns. Per
iteration, under `protection: ckks` (Encrypted), at every hospital h:

1. vendor -> h      `vfl.partial_logits`   [[u_V]]: the vendor's partial logits of h's matched rows, encrypted under
                                            the arbiter's key (CKKS); h cannot read them.
2. h -> arbiter     `vfl.logits`           [[u_V + u_H]] for h's matched training rows; its test rows are set to
                                            EXCLUDED_LOGIT, whose sigmoid is 0, so they add nothing to any gradient
                                            and the arbiter sees no logit of a test row.
3. arbiter -> h     `vfl.probabilities`    [[sigmoid(z)]], encrypted again, once per block of the slot layout
                                            (`cipher.Layout`) so that one product serves several columns.
4. h -> vendor      `vfl.residuals`        [[p - y]]: h's labels subtracted under encryption.
5. vendor -> arbiter -> vendor             the vendor's gradient, as masked slot sums (`vfl.host_gradient`).
6. h -> aggregator  `vfl.guest_gradient`   [[X_H^T r]] over h's matched rows, plus its unmatched rows' part,
                                            computed in the clear at h from its own rows only;
   aggregator -> arbiter -> aggregator     the hospitals' total, masked (`vfl.guest_total`);
   aggregator -> h  `vfl.guest_step`       the total EHR gradient, the same for every hospital.

After the last iteration the hospitals score their held-out patients (`_held_out_logits`): the vendor's partial
logits, encrypted, to each hospital (`vfl.score_partials`), which adds its own part, keeps the held-out rows and masks
every slot before the arbiter decrypts (`vfl.score_logits`); only the hospital can unmask the joint logits.

What each party learns, per iteration: the arbiter, the joint logit of every matched training row (slot by slot,
without any link id or feature, but it can follow one slot across iterations); the aggregator, the hospitals'
total EHR-block gradient (as a FedAvg server learns the sum of updates); the vendor, its own block's gradient;
each hospital, the total EHR-block gradient. No vendor feature value, partial logit, residual or label crosses in
the clear. Over many iterations the gradients the vendor and the aggregator see are linear in the residuals, the
leakage every gradient-sharing protocol has (docs/vfl.md). Under `protection: none` (Plain) the same steps run
in the clear with no arbiter: the hospital reads the vendor's partial logits and the vendor the residuals.

The step size is 1/L with L = 0.25 (Σ_h λ_max(X_h^T X_h) + λ_max(X_V^T X_V)) / N + l2, a bound on the loss's
curvature each party computes on its own block (Cauchy-Schwarz across blocks, Weyl across hospitals); with l2 > 0
the momentum is Nesterov's for a μ = l2 strongly convex function, which needs nothing more to be shared.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from workbench.crypto import ckks
from workbench.ledger import Protection
from workbench.parties import COORDINATOR
from workbench.vfl.cipher import PARAMS, Cipher, Encrypted, Layout, Plain, from_bytes, to_bytes

if TYPE_CHECKING:
    import numpy as np

EXCLUDED_LOGIT = -1000.0
"""A test row's logit as the arbiter receives it: its sigmoid is 0 in float64, so its residual is 0."""


class Send(Protocol):
    """How the protocol moves bytes: `StepContext.send` in a step (the ledger records them), a recorder in a test."""

    def __call__(self, sender: str, receiver: str, kind: str, payload: bytes, protection: Protection, *, row_level: bool = False) -> bytes: ...


@dataclass(frozen=True)
class GuestRows:
    """A hospital's standardized EHR rows with a last column of ones, in the order the protocol needs them."""

    matched: np.ndarray
    """Rows of patients the vendor also holds, in link-id order (the vendor's order)."""
    matched_labels: np.ndarray
    matched_train: np.ndarray
    """Boolean: whether each matched row is a training row."""
    unmatched: np.ndarray
    """Training rows of patients the vendor does not hold."""
    unmatched_labels: np.ndarray

    @property
    def train_rows(self) -> int:
        return int(self.matched_train.sum()) + len(self.unmatched_labels)


@dataclass
class Trained:
    """Where training ended: the EHR block (the intercept last) every hospital holds, and the vendor's block."""

    guest_weights: np.ndarray
    host_weights: np.ndarray
    iterations: int
    gradient_norm: float
    step_size: float
    held_out_logits: dict[str, np.ndarray]
    """Per hospital, the final model's joint logit of each matched held-out row (`~matched_train`, in matched order):
    what the hospital needs to score the patients the vendor also holds, and all it learns of the vendor's block."""


@dataclass(frozen=True)
class Parties:
    hospitals: tuple[str, ...]
    vendor: str
    aggregator: str
    arbiter: str | None
    """The key holder under CKKS; None in the clear."""


def alignment_digest(link_ids: np.ndarray) -> str:
    """What a hospital and the vendor compare before training: the same link ids, in the same order, on both sides."""
    import numpy as np

    return hashlib.sha256(np.asarray(link_ids, dtype=np.int64).tobytes()).hexdigest()


def train(
    send: Send,
    parties: Parties,
    guests: Mapping[str, GuestRows],
    host_blocks: Mapping[str, np.ndarray],
    *,
    l2: float,
    iterations: int,
    tolerance: float,
    on_iteration: Callable[[int, float], None] = lambda iteration, norm: None,
) -> Trained:
    """Run the protocol; `host_blocks` are the vendor's standardized rows aligned with each hospital's `matched`."""
    import numpy as np

    for hospital in parties.hospitals:
        if len(host_blocks[hospital]) != len(guests[hospital].matched):
            raise ValueError(f"{parties.vendor} holds {len(host_blocks[hospital])} rows aligned with {hospital}, which matched {len(guests[hospital].matched)}")
    total_rows = _total_rows(send, parties, guests)
    ciphers = _ciphers(send, parties, guests, host_blocks)
    step = _step_size(send, parties, guests, host_blocks, total_rows, l2)
    momentum = _momentum(step, l2)
    guest_dims, host_dims = next(iter(guests.values())).matched.shape[1], next(iter(host_blocks.values())).shape[1]
    guest_w, host_w = np.zeros(guest_dims), np.zeros(host_dims)
    guest_prev, host_prev = guest_w.copy(), host_w.copy()
    norm, done = math.inf, 0
    for iteration in range(1, iterations + 1):
        beta = momentum(iteration)
        guest_y, host_y = guest_w + beta * (guest_w - guest_prev), host_w + beta * (host_w - host_prev)
        guest_grad, host_grad = _gradients(send, parties, ciphers, guests, host_blocks, guest_y, host_y, total_rows)
        guest_grad[:-1] += l2 * guest_y[:-1]
        host_grad += l2 * host_y
        guest_prev, host_prev = guest_w, host_w
        guest_w, host_w = guest_y - step * guest_grad, host_y - step * host_grad
        norm, done = _report_norm(send, parties, guest_grad, host_grad), iteration
        on_iteration(iteration, norm)
        if norm <= tolerance:
            break
    held_out = {h: _held_out_logits(send, parties, ciphers, guests[h], host_blocks[h], h, guest_w, host_w) for h in parties.hospitals}
    return Trained(guest_w, host_w, done, norm, step, held_out)


def _ciphers(send: Send, parties: Parties, guests: Mapping[str, GuestRows], host_blocks: Mapping[str, np.ndarray]) -> dict[str, Cipher]:
    """Each party's view of the vectors: the arbiter makes the key pair and sends the public half to every other party."""
    others = [*parties.hospitals, parties.vendor, parties.aggregator]
    if parties.arbiter is None:
        return {party: Plain() for party in others}
    layout = _layout(send, parties, guests, host_blocks, parties.arbiter)
    secret = ckks.secret_context(PARAMS)
    public = ckks.context_bytes(secret, secret=False)
    views: dict[str, Cipher] = {parties.arbiter: Encrypted(secret, layout)}
    for party in others:
        views[party] = Encrypted(ckks.load_context(send(parties.arbiter, party, "vfl.public_key", public, Protection.NONE)), layout)
    return views


def _layout(send: Send, parties: Parties, guests: Mapping[str, GuestRows], host_blocks: Mapping[str, np.ndarray], arbiter: str) -> Layout:
    """The slot layout every party uses, from the vendor, which knows how many rows it aligned with each hospital."""
    longest = max(len(block) for block in host_blocks.values())
    widest = max(next(iter(guests.values())).matched.shape[1], next(iter(host_blocks.values())).shape[1])
    layout = Layout.for_rows(longest, widest)
    received = [
        from_bytes(send(parties.vendor, party, "vfl.layout", to_bytes([layout.block, layout.copies]), Protection.NONE))
        for party in [*parties.hospitals, parties.aggregator, arbiter]
    ]
    return Layout(int(received[0][0]), int(received[0][1]))  # the same at every party


def _total_rows(send: Send, parties: Parties, guests: Mapping[str, GuestRows]) -> int:
    """N, the training rows of every hospital: the gradient is a mean over them (each hospital's count to the aggregator)."""
    counts = [int(from_bytes(send(h, parties.aggregator, "vfl.train_rows", to_bytes([guests[h].train_rows]), Protection.NONE))[0]) for h in parties.hospitals]
    total = sum(counts)
    for hospital in parties.hospitals:
        send(parties.aggregator, hospital, "vfl.train_rows", to_bytes([total]), Protection.NONE)
    send(parties.aggregator, parties.vendor, "vfl.train_rows", to_bytes([total]), Protection.NONE)
    return total


def _step_size(send: Send, parties: Parties, guests: Mapping[str, GuestRows], host_blocks: Mapping[str, np.ndarray], total_rows: int, l2: float) -> float:
    import numpy as np

    def largest_eigenvalue(rows: np.ndarray) -> float:
        return float(np.linalg.eigvalsh(rows.T @ rows)[-1]) if len(rows) else 0.0

    bounds = []
    for hospital in parties.hospitals:
        rows = guests[hospital]
        own = np.vstack([rows.matched[rows.matched_train], rows.unmatched])
        bounds.append(from_bytes(send(hospital, COORDINATOR, "vfl.curvature", to_bytes([largest_eigenvalue(own)]), Protection.NONE))[0])
    vendor_rows = np.vstack(list(host_blocks.values()))
    bounds.append(from_bytes(send(parties.vendor, COORDINATOR, "vfl.curvature", to_bytes([largest_eigenvalue(vendor_rows)]), Protection.NONE))[0])
    step = 1.0 / (0.25 * float(sum(bounds)) / total_rows + l2)
    received = [from_bytes(send(COORDINATOR, party, "vfl.step_size", to_bytes([step]), Protection.NONE))[0] for party in [*parties.hospitals, parties.vendor]]
    return float(received[0])  # the same value at every party: the one each steps with


def _momentum(step: float, l2: float) -> Callable[[int], float]:
    """Nesterov's constant momentum for a μ-strongly convex loss (μ = l2); FISTA's schedule when there is no l2."""
    if l2 > 0:
        root = math.sqrt(1.0 / (step * l2))
        constant = (root - 1.0) / (root + 1.0)
        return lambda iteration: constant if iteration > 1 else 0.0
    return lambda iteration: (iteration - 2) / (iteration + 1) if iteration > 1 else 0.0


def _gradients(
    send: Send,
    parties: Parties,
    ciphers: Mapping[str, Cipher],
    guests: Mapping[str, GuestRows],
    host_blocks: Mapping[str, np.ndarray],
    guest_w: np.ndarray,
    host_w: np.ndarray,
    total_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss gradient (without the penalty) at (guest_w, host_w), each block computed where its weights are."""
    import numpy as np

    vendor, aggregator = parties.vendor, parties.aggregator
    residuals_at_vendor, guest_parts = {}, []
    for hospital in parties.hospitals:
        rows, at_h = guests[hospital], ciphers[hospital]
        sent = at_h.protection
        partial = send(vendor, hospital, "vfl.partial_logits", ciphers[vendor].encrypt(host_blocks[hospital] @ host_w), sent, row_level=True)
        own = rows.matched @ guest_w
        if parties.arbiter is None:
            probability = _sigmoid(at_h.decrypt(partial, len(own)) + own)
            residual = at_h.encrypt(np.where(rows.matched_train, probability - rows.matched_labels, 0.0))
        else:
            logits = at_h.add_plain(partial, np.where(rows.matched_train, own, EXCLUDED_LOGIT))
            received = send(hospital, parties.arbiter, "vfl.logits", logits, sent, row_level=True)
            at_arbiter = ciphers[parties.arbiter]
            probabilities = at_arbiter.encrypt(at_arbiter.replicate(_sigmoid(at_arbiter.decrypt(received, len(own)))))
            probability_vector = send(parties.arbiter, hospital, "vfl.probabilities", probabilities, sent, row_level=True)
            residual = at_h.add_plain(probability_vector, -at_h.replicate(np.where(rows.matched_train, rows.matched_labels, 0.0)))
        residuals_at_vendor[hospital] = send(hospital, vendor, "vfl.residuals", residual, sent, row_level=True)
        unmatched_residual = _sigmoid(rows.unmatched @ guest_w) - rows.unmatched_labels
        guest_part = at_h.inner(residual, rows.matched, rows.unmatched.T @ unmatched_residual)
        guest_parts.append(send(hospital, aggregator, "vfl.guest_gradient", guest_part, sent))
    at_vendor = ciphers[vendor]
    host_parts = [at_vendor.inner(residuals_at_vendor[h], host_blocks[h], np.zeros(len(host_w))) for h in parties.hospitals]
    host_grad = _open_masked(send, parties, ciphers, vendor, host_parts, len(host_w), "vfl.host_gradient")
    guest_grad = _open_masked(send, parties, ciphers, aggregator, guest_parts, len(guest_w), "vfl.guest_total")
    for hospital in parties.hospitals:
        send(aggregator, hospital, "vfl.guest_step", to_bytes(guest_grad), Protection.NONE)
    return guest_grad / total_rows, host_grad / total_rows


def _held_out_logits(
    send: Send, parties: Parties, ciphers: Mapping[str, Cipher], rows: GuestRows, host_block: np.ndarray, hospital: str, guest_w: np.ndarray, host_w: np.ndarray
) -> np.ndarray:
    """The joint logits of `hospital`'s matched held-out rows under the final model, learned by the hospital alone.

    The vendor encrypts its partial logits of every row it aligned with the hospital (it does not know which are held
    out); the hospital adds its own, keeps only the held-out rows (a plaintext 0/1 product) and masks every slot before
    the arbiter decrypts, so the arbiter sees uniform noise and hands back what only the hospital can unmask. In the
    clear the hospital reads the vendor's partial logits, of every aligned row, as it does in training.
    """
    import numpy as np

    at_h, held_out = ciphers[hospital], ~rows.matched_train
    own = rows.matched @ guest_w
    partial = send(parties.vendor, hospital, "vfl.score_partials", ciphers[parties.vendor].encrypt(host_block @ host_w), at_h.protection, row_level=True)
    if not isinstance(at_h, Encrypted) or parties.arbiter is None:
        clear: np.ndarray = (at_h.decrypt(partial, len(own)) + own)[held_out]
        return clear
    masked, mask = at_h.mask_rows(partial, own, held_out.astype(np.float64))
    received = send(hospital, parties.arbiter, "vfl.score_logits", masked, Protection.CKKS, row_level=True)
    opened = ckks.release(ciphers[parties.arbiter].decrypt(received, len(mask)))
    returned = from_bytes(send(parties.arbiter, hospital, "vfl.score_logits", to_bytes(opened), Protection.MASKED, row_level=True))
    logits: np.ndarray = (returned - mask)[: len(own)][held_out]
    return logits


def _open_masked(send: Send, parties: Parties, ciphers: Mapping[str, Cipher], owner: str, parts: list[bytes], columns: int, kind: str) -> np.ndarray:
    """The sum of per-column `parts` the `owner` holds encrypted, opened through the arbiter under the owner's mask (or
    read, in the clear)."""
    at_owner = ciphers[owner]
    masked, mask = at_owner.masked_sum(parts)
    if not isinstance(at_owner, Encrypted) or parties.arbiter is None:
        return at_owner.decrypt(masked, columns)
    received = send(owner, parties.arbiter, kind, masked, Protection.CKKS)
    at_arbiter = ciphers[parties.arbiter]
    opened = ckks.release(at_arbiter.decrypt(received, len(mask)))
    returned = from_bytes(send(parties.arbiter, owner, kind, to_bytes(opened), Protection.MASKED))
    return at_owner.unmask(returned, mask, columns)


def _report_norm(send: Send, parties: Parties, guest_grad: np.ndarray, host_grad: np.ndarray) -> float:
    """Each block's squared gradient norm to the coordinator, which stops training at the tolerance."""
    import numpy as np

    squares = [
        from_bytes(send(parties.aggregator, COORDINATOR, "vfl.progress", to_bytes([float(guest_grad @ guest_grad)]), Protection.NONE))[0],
        from_bytes(send(parties.vendor, COORDINATOR, "vfl.progress", to_bytes([float(host_grad @ host_grad)]), Protection.NONE))[0],
    ]
    return float(np.sqrt(sum(squares)))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    result: np.ndarray = expit(values)
    return result
