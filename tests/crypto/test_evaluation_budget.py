"""The provider's evaluation cap per requester: enforced in both PSI protocols before anything is evaluated."""

from __future__ import annotations

import struct

import pytest

from workbench.crypto.evaluation_budget import EvaluationBudget, EvaluationBudgetError
from workbench.crypto.labeled_psi import LabeledPsiReceiver, LabeledPsiSender
from workbench.crypto.psi import PsiClient, PsiServer, run_psi

ITEMS = [f"ID{i:05d}" for i in range(300)]


def test_a_huge_declaration_is_refused_by_the_provider_cap() -> None:
    """Issue 21: a requester declaring 2^63 items was accepted; the provider's own cap now refuses it."""
    sender = LabeledPsiSender(ITEMS, [struct.pack("<d", i) for i in range(len(ITEMS))], budget=EvaluationBudget(1000, "north", "vendor"))
    with pytest.raises(EvaluationBudgetError, match="'vendor' refuses to evaluate 9223372036854775807 identifiers for 'north': its cap is 1000"):
        sender.accept(struct.pack("<Q", 2**63 - 1))
    assert sender.budget is None, "nothing was granted"


def test_the_cap_spans_sessions_of_one_requester() -> None:
    budget = EvaluationBudget(500, "north", "vendor")
    for _ in range(2):
        LabeledPsiSender(ITEMS, [bytes(8)] * len(ITEMS), budget=budget).accept(LabeledPsiReceiver(ITEMS[:200]).declaration())
    with pytest.raises(EvaluationBudgetError, match="cap is 500 per requester and 400 are used"):
        LabeledPsiSender(ITEMS, [bytes(8)] * len(ITEMS), budget=budget).accept(LabeledPsiReceiver(ITEMS[:200]).declaration())


def test_ecdh_psi_refuses_a_client_set_over_the_cap_before_any_message() -> None:
    sent: list[str] = []

    def carry(kind: str, payload: bytes) -> bytes:
        sent.append(kind)
        return payload

    budget = EvaluationBudget(299, "north", "vendor")
    with pytest.raises(EvaluationBudgetError, match="refuses to evaluate 300"):
        run_psi(PsiClient(ITEMS, reveal_intersection=True), PsiServer(ITEMS, reveal_intersection=True, budget=budget), carry, carry)
    assert sent == [] and budget.used == 0


def test_ecdh_psi_charges_what_the_server_evaluates() -> None:
    budget = EvaluationBudget(1000, "north", "vendor")
    outcome = run_psi(
        PsiClient(ITEMS, reveal_intersection=True, chunk_size=100),
        PsiServer(ITEMS[100:], reveal_intersection=True, chunk_size=100, budget=budget),
        lambda k, p: p,
        lambda k, p: p,
    )
    assert outcome.size == 200 and budget.used == 300
