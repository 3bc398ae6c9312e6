from __future__ import annotations

import multiprocessing
import struct
from concurrent.futures import ProcessPoolExecutor

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from voprf import ristretto

from workbench.crypto.labeled_psi import (
    INFO,
    NONCE,
    LabeledPsiError,
    LabeledPsiReceiver,
    LabeledPsiSender,
    derive,
    parse_table,
    run_labeled_psi,
)

HOSPITAL = [f"MRN{i:06d}" for i in range(120)]
VENDOR = [f"MRN{i:06d}" for i in range(60, 260)]
PAYLOADS = [struct.pack("<2d", i, i / 2) for i in range(len(VENDOR))]
HEADER, RECORD = 76, 16 + 16 + 16
"""Public key, salt, count, payload length; then per record: lookup tag, sealed 16-byte payload, GCM tag."""
EXPECTED = {i: PAYLOADS[VENDOR.index(item)] for i, item in enumerate(HOSPITAL) if item in VENDOR}


def _carry(log: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    def send(kind: str, payload: bytes) -> bytes:
        log.append((kind, payload))
        return payload

    return send


def test_rfc9497_known_answer() -> None:
    """voprf 0.2.0 reproduces RFC 9497 appendix A.1.2 (VOPRF, ristretto255-SHA512): key, output, and the blinded round trip."""
    evaluator = ristretto.Evaluator.from_seed(bytes([0xA3]) * 32, b"test key")
    assert evaluator.public_key.serialize().hex() == "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"
    expected = "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7da4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
    assert evaluator.evaluate_known_input(b"\x00").hex() == expected
    client, blinded = ristretto.Client.blind(b"\x00")
    assert client.finalize(evaluator.evaluate(blinded), evaluator.public_key).hex() == expected


def test_receiver_opens_exactly_the_payloads_of_its_matching_items() -> None:
    log: list[tuple[str, bytes]] = []
    opened = run_labeled_psi(LabeledPsiReceiver(HOSPITAL, batch_size=50), LabeledPsiSender(VENDOR, PAYLOADS), _carry(log), _carry(log))
    assert opened == EXPECTED
    kinds = [kind for kind, _ in log]
    assert kinds[:2] == ["psi.setup", "psi.payload"] and kinds.count("psi.request") == 3 == kinds.count("psi.response")
    assert len(log[1][1]) == HEADER + len(VENDOR) * RECORD


def test_sealing_in_worker_processes_gives_the_same_result() -> None:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        opened = run_labeled_psi(LabeledPsiReceiver(HOSPITAL), LabeledPsiSender(VENDOR, PAYLOADS, executor=pool), _carry([]), _carry([]))
    assert opened == EXPECTED


def test_a_non_matching_record_cannot_be_opened() -> None:
    sender = LabeledPsiSender(VENDOR, PAYLOADS)
    table = parse_table(sender.table())
    outsider = b"MRN999999"
    # The best a receiver can do for an item the sender does not hold: its true OPRF output under the session key.
    tag, key = derive(ristretto.Evaluator.from_seed(sender._seed, INFO).evaluate_known_input(outsider), table.salt)
    assert table.find([tag]) == [None]
    for record_tag, ciphertext in table.records():
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(NONCE, ciphertext, table.salt + record_tag)


def test_keys_of_another_session_open_nothing() -> None:
    first, second = LabeledPsiSender(VENDOR, PAYLOADS), LabeledPsiSender(VENDOR, PAYLOADS)
    table = parse_table(second.table())
    tag, key = derive(ristretto.Evaluator.from_seed(first._seed, INFO).evaluate_known_input(VENDOR[0].encode()), first.salt)
    assert table.find([tag]) == [None] and first.public_key != second.public_key and first.salt != second.salt
    for record_tag, ciphertext in table.records():
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(NONCE, ciphertext, table.salt + record_tag)


def test_the_sender_answers_no_more_than_the_declared_set_size() -> None:
    receiver, sender = LabeledPsiReceiver(HOSPITAL), LabeledPsiSender(VENDOR, PAYLOADS)
    with pytest.raises(LabeledPsiError, match="declare its set size"):
        sender.evaluate(receiver.request(0))
    sender.accept(LabeledPsiReceiver(HOSPITAL[:10]).declaration())
    with pytest.raises(LabeledPsiError, match="budget exceeded: 120 items requested, 10 left"):
        sender.evaluate(receiver.request(0))
    with pytest.raises(LabeledPsiError, match="already declared"):
        sender.accept(receiver.declaration())


def test_an_answer_under_another_key_fails_verification() -> None:
    receiver, honest, other = LabeledPsiReceiver(HOSPITAL), LabeledPsiSender(VENDOR, PAYLOADS), LabeledPsiSender(VENDOR, PAYLOADS)
    other.accept(receiver.declaration())
    receiver.receive_table(honest.table())
    with pytest.raises(LabeledPsiError, match="does not verify"):
        receiver.open(0, other.evaluate(receiver.request(0)))


def test_an_altered_matching_record_fails_authentication() -> None:
    receiver, sender = LabeledPsiReceiver(HOSPITAL), LabeledPsiSender(VENDOR, PAYLOADS)
    sender.accept(receiver.declaration())
    table = bytearray(sender.table())
    for start in range(HEADER, len(table), RECORD):  # flip one ciphertext bit in every record, keep the tags
        table[start + 20] ^= 1
    receiver.receive_table(bytes(table))
    with pytest.raises(LabeledPsiError, match="fails authentication"):
        receiver.open(0, sender.evaluate(receiver.request(0)))


def test_malformed_messages_are_refused() -> None:
    sender = LabeledPsiSender(VENDOR, PAYLOADS)
    sender.accept(struct.pack("<Q", 5))
    with pytest.raises(LabeledPsiError, match="invalid blinded element"):
        sender.evaluate(bytes(32))  # the identity point
    with pytest.raises(LabeledPsiError, match="multiple of 32"):
        sender.evaluate(bytes(33))
    table = sender.table()
    with pytest.raises(LabeledPsiError, match="does not match"):
        parse_table(table[:-1])
    first, second = table[HEADER : HEADER + RECORD], table[HEADER + RECORD : HEADER + 2 * RECORD]
    with pytest.raises(LabeledPsiError, match="not sorted by distinct tags"):
        parse_table(table[:HEADER] + second + first + table[HEADER + 2 * RECORD :])
    with pytest.raises(ValueError, match="one length"):
        LabeledPsiSender(["a", "b"], [b"x", b"yy"])
    assert INFO.startswith(b"ppml-workbench")
