from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.ledger import Ledger, Protection, read_ledger


def _send_random(ledger: Ledger, rng: np.random.Generator, count: int) -> list[bytes]:
    parties = ["a", "b", "c", "aggregator"]
    payloads = []
    for _ in range(count):
        sender, receiver = rng.choice(parties, size=2, replace=False)
        payload = rng.bytes(int(rng.integers(0, 5000)))
        protection = rng.choice(list(Protection))
        ledger.record(step="s", sender=str(sender), receiver=str(receiver), kind="k", payload=payload, protection=protection, row_level=False)
        payloads.append(payload)
    return payloads


def test_totals_equal_what_was_sent(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    payloads = _send_random(ledger, np.random.default_rng(0), 200)
    assert ledger.total_bytes() == sum(len(p) for p in payloads)
    assert sum(row["bytes"] for row in ledger.summary()) == ledger.total_bytes()
    assert sum(row["messages"] for row in ledger.summary()) == 200
    on_disk = read_ledger(tmp_path / "ledger.jsonl")
    assert on_disk == list(ledger.messages)
    assert [m.nbytes for m in on_disk] == [len(p) for p in payloads]


def test_messages_are_numbered_and_digested(tmp_path: Path) -> None:
    ledger = Ledger()
    first = ledger.record(step="s", sender="a", receiver="b", kind="k", payload=b"abc", protection=Protection.NONE, row_level=True)
    second = ledger.record(step="s", sender="b", receiver="a", kind="k", payload=b"", protection="ckks", row_level=False)
    assert (first.seq, second.seq) == (0, 1)
    assert second.protection is Protection.CKKS
    assert first.digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert json.loads(first.to_json())["row_level"] is True


def test_only_bytes_cross() -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        Ledger().record(step="s", sender="a", receiver="b", kind="k", payload=[1, 2], protection="none", row_level=False)  # type: ignore[arg-type]


def test_a_party_does_not_message_itself() -> None:
    with pytest.raises(ValueError, match="to itself"):
        Ledger().record(step="s", sender="a", receiver="a", kind="k", payload=b"x", protection="none", row_level=False)


def test_listeners_see_every_message() -> None:
    seen = []
    ledger = Ledger(listeners=[seen.append])
    _send_random(ledger, np.random.default_rng(1), 10)
    assert seen == list(ledger.messages)
