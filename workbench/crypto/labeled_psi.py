"""Labeled PSI: the receiver gets the sender's payload for the items both hold, and nothing else.

Built from reviewed primitives only, no curve arithmetic of our own:

* OPRF: RFC 9497 VOPRF over ristretto255-SHA512 (the `voprf` package, a
  binding of the Rust `voprf` crate). The sender holds the key k; the receiver
  learns F_k(x) for its own items x without the sender learning x, and checks a
  DLEQ proof against the sender's public key, so the sender cannot answer with
  another key (which would tag queries).
* KDF: HKDF-Expand-SHA256 of the 64-byte OPRF output gives a 16-byte lookup tag
  and a 32-byte AES key, salted per session.
* AEAD: AES-256-GCM (`cryptography`). Each derived key encrypts exactly one
  record and the salt is fresh per session, so a fixed nonce is safe.

Protocol (one session, see docs/psi.md):

1. receiver -> sender  `declaration`: how many items it will query (8 bytes).
   The sender evaluates at most that many: the evaluation budget.
2. sender -> receiver  `table`: public key, salt and, for every own record,
   tag || AES-GCM(key, payload), sorted by tag (a pseudorandom order).
3. receiver -> sender  `request`: blinded items, ≤ 65535 per batch.
4. sender -> receiver  `response`: evaluated elements and a batch proof.
   The receiver unblinds, derives tag and key, looks the tag up and decrypts:
   a tag it cannot derive belongs to a record it cannot open.

The sender learns only the number of items queried; the receiver learns the
sender's record count and, for its own items, membership and payload.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from voprf import ristretto as oprf

from workbench.crypto.evaluation_budget import EvaluationBudget
from workbench.errors import WorkbenchError

INFO = b"ppml-workbench/labeled-psi/v1"
TAG_LEN, KEY_LEN, GCM_TAG_LEN, POINT_LEN, PROOF_LEN = 16, 32, 16, 32, 64
MAX_BATCH = 65535
"""voprf refuses larger evaluate_batch calls."""
NONCE = bytes(12)
"""Fixed: each AES key is derived for one record of one session and encrypts only that record."""
DECLARATION, TABLE, REQUEST, RESPONSE = "psi.setup", "psi.payload", "psi.request", "psi.response"
"""Message kinds, in protocol order."""
Send = Callable[[str, bytes], bytes]
"""Carries one message to the other party and returns the bytes it received: send(kind, payload)."""
_HEADER = struct.Struct("<32s32sQI")  # public key, salt, record count, payload length
_DECLARATION = struct.Struct("<Q")


class LabeledPsiError(WorkbenchError, ValueError):
    """A protocol message is malformed, over budget, or fails verification."""


def derive(oprf_output: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """Lookup tag and AES key of one item in one session.

    The OPRF output is already a uniformly random PRF value, so HKDF-Expand
    suffices (no Extract); the session salt in `info` makes every session's
    keys fresh, which is what makes the fixed nonce safe.
    """
    okm = HKDFExpand(hashes.SHA256(), TAG_LEN + KEY_LEN, INFO + b"|" + salt).derive(oprf_output)
    return okm[:TAG_LEN], okm[TAG_LEN:]


def _encode(item: str | bytes) -> bytes:
    data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
    if not 0 < len(data) < 2**16:
        raise ValueError(f"an item must be 1 to 65535 bytes long, got {len(data)}")
    return data


def _seal_records(seed: bytes, salt: bytes, items: Sequence[bytes], payloads: Sequence[bytes]) -> bytes:
    """tag || AES-GCM(key, payload) for each record, concatenated: the sender's expensive part, a pure function for worker processes."""
    evaluator = oprf.Evaluator.from_seed(seed, INFO)
    records = bytearray()  # no object per record: at 1e6 records that is ~100 MB saved
    for item, payload in zip(items, payloads, strict=True):
        tag, key = derive(evaluator.evaluate_known_input(item), salt)
        records += tag
        records += AESGCM(key).encrypt(NONCE, payload, salt + tag)
    return bytes(records)


def _record_view(body: bytes | memoryview, width: int) -> np.ndarray:
    """Fixed-width records as a numpy view: the tag's two halves as big-endian integers (sortable, searchable), then the rest."""
    return np.frombuffer(body, dtype=np.dtype([("hi", ">u8"), ("lo", ">u8"), ("rest", f"V{width - TAG_LEN}")]))


def _sorted_by_tag(records: bytes, width: int) -> np.ndarray:
    """Records in tag order: tags are pseudorandom, so this order says nothing about the sender's record order."""
    view = _record_view(records, width)
    return view[np.lexsort((view["lo"], view["hi"]))]


def _evaluate(seed: bytes, blinded: bytes) -> bytes:
    evaluator = oprf.Evaluator.from_seed(seed, INFO)
    try:
        points = [oprf.BlindedInput.deserialize(blinded[i : i + POINT_LEN]) for i in range(0, len(blinded), POINT_LEN)]
    except ValueError as error:
        raise LabeledPsiError(f"the request holds an invalid blinded element: {error}") from None
    return bytes(evaluator.evaluate_batch(points).serialize())


class LabeledPsiSender:
    """The party with records and payloads (the vendor). Fresh key and salt per session, and an evaluation budget.

    `executor` (a process pool) spreads the sealing of records over cores: the
    OPRF binding holds the GIL, so threads would not help. Only the session's
    seed and the records travel to the workers, which belong to the sender.
    """

    def __init__(
        self,
        items: Sequence[str | bytes],
        payloads: Sequence[bytes],
        *,
        executor: Executor | None = None,
        parallelism: int = 2,
        budget: EvaluationBudget | None = None,
    ) -> None:
        if len(items) != len(payloads):
            raise ValueError(f"{len(items)} items but {len(payloads)} payloads")
        lengths = {len(payload) for payload in payloads}
        if len(lengths) > 1:
            raise ValueError(f"payloads must all have one length, so that ciphertext sizes say nothing about a record; got lengths {sorted(lengths)[:5]}")
        self._items = [_encode(item) for item in items]
        self._payloads = [bytes(payload) for payload in payloads]
        self.payload_length = lengths.pop() if lengths else 0
        self._seed = secrets.token_bytes(32)
        self._executor = executor
        self._shards = max(1, parallelism)
        self.salt = secrets.token_bytes(32)
        self.public_key = bytes(oprf.Evaluator.from_seed(self._seed, INFO).public_key.serialize())
        self.budget: int | None = None
        """Evaluations left in this session; None until the receiver has declared its set size."""
        self.cap = budget
        """The provider's own cap for this requester over all its sessions: a declaration beyond it is refused."""

    def table(self) -> bytes:
        """Every record sealed under its item's OPRF-derived key, sorted by tag (which hides record order)."""
        n = len(self._items)
        if self._executor is None or n < 2 * self._shards:
            records = _seal_records(self._seed, self.salt, self._items, self._payloads)
        else:
            step = -(-n // self._shards)
            futures = [
                self._executor.submit(_seal_records, self._seed, self.salt, self._items[i : i + step], self._payloads[i : i + step]) for i in range(0, n, step)
            ]
            records = b"".join(future.result() for future in futures)
        width = TAG_LEN + self.payload_length + GCM_TAG_LEN
        header = _HEADER.pack(self.public_key, self.salt, n, self.payload_length)
        return b"".join((header, _sorted_by_tag(records, width).data.cast("B")))  # one copy

    def accept(self, declaration: bytes) -> None:
        """Set the evaluation budget to the set size the receiver declared; it cannot be raised afterwards."""
        if self.budget is not None:
            raise LabeledPsiError("the receiver has already declared its set size in this session")
        if len(declaration) != _DECLARATION.size:
            raise LabeledPsiError(f"a declaration is {_DECLARATION.size} bytes, got {len(declaration)}")
        (declared,) = _DECLARATION.unpack(declaration)
        if self.cap is not None:
            self.cap.charge(declared)
        self.budget = declared

    def evaluate(self, request: bytes) -> bytes:
        """Evaluate one batch of blinded items, within the budget; invalid points are refused by the OPRF library."""
        return self.evaluate_async(request).result()

    def evaluate_async(self, request: bytes) -> Future[bytes]:
        """`evaluate` on the sender's executor, so the receiver can blind its next batch meanwhile; the budget is charged now."""
        if self.budget is None:
            raise LabeledPsiError("no declaration received: the receiver must declare its set size before querying")
        if len(request) % POINT_LEN or not request:
            raise LabeledPsiError(f"a request is a non-empty multiple of {POINT_LEN} bytes, got {len(request)}")
        count = len(request) // POINT_LEN
        if count > MAX_BATCH:
            raise LabeledPsiError(f"a request holds at most {MAX_BATCH} items, got {count}")
        if count > self.budget:
            raise LabeledPsiError(f"evaluation budget exceeded: {count} items requested, {self.budget} left of the declared set size")
        self.budget -= count
        if self._executor is not None:
            return self._executor.submit(_evaluate, self._seed, request)
        done: Future[bytes] = Future()
        try:
            done.set_result(_evaluate(self._seed, request))
        except LabeledPsiError as error:
            done.set_exception(error)
        return done


@dataclass(frozen=True)
class _Table:
    """A sender's table, kept as received: records are found by binary search on their tags, with no per-record objects."""

    public_key: bytes
    salt: bytes
    payload_length: int
    body: memoryview
    tags: np.ndarray
    """The first half of each record's tag as an unsigned integer, in table (sorted) order."""

    @property
    def width(self) -> int:
        return TAG_LEN + self.payload_length + GCM_TAG_LEN

    def __len__(self) -> int:
        return len(self.tags)

    def find(self, tags: Sequence[bytes]) -> list[bytes | None]:
        """The ciphertext stored under each tag, or None where the table has no such tag."""
        wanted = np.array([int.from_bytes(tag[:8], "big") for tag in tags], dtype=np.uint64)
        positions = np.searchsorted(self.tags, wanted)
        found: list[bytes | None] = [None] * len(tags)
        for query in np.flatnonzero(positions < len(self.tags)).tolist():
            position = int(positions[query])
            while position < len(self.tags) and self.tags[position] == wanted[query]:  # equal halves: compare whole tags
                start = position * self.width
                if self.body[start : start + TAG_LEN] == tags[query]:
                    found[query] = bytes(self.body[start + TAG_LEN : start + self.width])
                    break
                position += 1
        return found

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (tag, ciphertext), for inspection."""
        for start in range(0, len(self) * self.width, self.width):
            yield bytes(self.body[start : start + TAG_LEN]), bytes(self.body[start + TAG_LEN : start + self.width])


def parse_table(table: bytes) -> _Table:
    """Read a sender's table; refuse one whose length does not match its header, or that is not sorted by distinct tags."""
    if len(table) < _HEADER.size:
        raise LabeledPsiError(f"a table starts with a {_HEADER.size}-byte header, got {len(table)} bytes")
    public_key, salt, count, payload_length = _HEADER.unpack_from(table)
    width = TAG_LEN + payload_length + GCM_TAG_LEN
    if len(table) != _HEADER.size + count * width:
        raise LabeledPsiError(f"table length {len(table)} does not match its {count} records of {width} bytes")
    body = memoryview(table)[_HEADER.size :]
    view = _record_view(body, width)
    hi, lo = view["hi"].astype(np.uint64), view["lo"].astype(np.uint64)
    earlier_hi, later_hi = hi[:-1], hi[1:]
    if np.any((later_hi < earlier_hi) | ((later_hi == earlier_hi) & (lo[1:] <= lo[:-1]))):
        raise LabeledPsiError("the table's records are not sorted by distinct tags")
    return _Table(public_key, salt, payload_length, body, hi)


class LabeledPsiReceiver:
    """The party that queries its items (the hospital): blinds in batches, opens the payloads of its matching items.

    Batches are blinded one at a time and finalized as their answers arrive, so
    the pending blinding state (≈ 0.5 kB per item) stays bounded.
    """

    def __init__(self, items: Sequence[str | bytes], *, batch_size: int = MAX_BATCH) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}, got {batch_size}")
        self._items = [_encode(item) for item in items]
        self.batch_size = batch_size
        self._table: _Table | None = None
        self._pending: dict[int, list[oprf.Client]] = {}

    def declaration(self) -> bytes:
        return _DECLARATION.pack(len(self._items))

    def receive_table(self, table: bytes) -> None:
        self._table = parse_table(table)

    @property
    def batches(self) -> int:
        return -(-len(self._items) // self.batch_size)

    def request(self, batch: int) -> bytes:
        """Blind the items of one batch; keep their blinding state until `open` is called for it."""
        clients, blinded = [], []
        for item in self._items[batch * self.batch_size : (batch + 1) * self.batch_size]:
            client, point = oprf.Client.blind(item)
            clients.append(client)
            blinded.append(point.serialize())
        self._pending[batch] = clients
        return b"".join(blinded)

    def open(self, batch: int, response: bytes) -> dict[int, bytes]:
        """Payloads of this batch's items that the sender holds, by index into all items; the proof is checked first."""
        if self._table is None:
            raise LabeledPsiError("the sender's table must arrive before its answers can be opened")
        table, clients = self._table, self._pending.pop(batch)
        public_key = oprf.PublicKey.deserialize(table.public_key)
        try:
            outputs = oprf.Client.finalize_batch(clients, oprf.VerifiableBatchOutput.deserialize(response), public_key)
        except BaseException as error:  # voprf 0.2.0 panics (a BaseException) on a bad proof
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise
            raise LabeledPsiError(f"the sender's answer does not verify against its public key: {error}") from None
        derived = [derive(output, table.salt) for output in outputs]
        opened = {}
        for offset, ((tag, key), ciphertext) in enumerate(zip(derived, table.find([tag for tag, _ in derived]))):
            if ciphertext is None:
                continue
            try:
                opened[batch * self.batch_size + offset] = AESGCM(key).decrypt(NONCE, ciphertext, table.salt + tag)
            except InvalidTag:
                raise LabeledPsiError("a matching record fails authentication: the table was altered") from None
        return opened


def run_labeled_psi(receiver: LabeledPsiReceiver, sender: LabeledPsiSender, to_sender: Send, to_receiver: Send) -> dict[int, bytes]:
    """One session, every message through `to_sender`/`to_receiver`: the receiver's index -> the sender's payload.

    With a sender executor the parties overlap as they would on two machines:
    the sender seals its table while the receiver blinds its first batch, and
    evaluates batch i while the receiver blinds batch i+1 and opens batch i-1.
    Messages are sent from the calling thread only.
    """
    sender.accept(to_sender(DECLARATION, receiver.declaration()))
    with ThreadPoolExecutor(1, thread_name_prefix="labeled-psi-table") as background:
        table = background.submit(sender.table)
        first = receiver.request(0) if receiver.batches else b""
        receiver.receive_table(to_receiver(TABLE, table.result()))
    opened: dict[int, bytes] = {}
    waiting: tuple[int, Future[bytes]] | None = None
    for batch in range(receiver.batches):
        request = first if batch == 0 else receiver.request(batch)
        answer = sender.evaluate_async(to_sender(REQUEST, request))
        if waiting is not None:
            opened.update(receiver.open(waiting[0], to_receiver(RESPONSE, waiting[1].result())))
        waiting = (batch, answer)
    if waiting is not None:
        opened.update(receiver.open(waiting[0], to_receiver(RESPONSE, waiting[1].result())))
    return opened
