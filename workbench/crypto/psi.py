"""Semi-honest ECDH private set intersection, as sessions over openmined-psi 2.0.4.

The server (the party whose set is encoded in the setup message) learns only
the size of the client's set; the client learns which of its items are in the
server's set (`reveal_intersection=True`) or only how many (`False`), plus the
approximate size of the server's set. Nothing here knows about recipes or
parties: items are strings, messages are bytes, and a caller-supplied `send`
moves each message (so the workbench can put it in its ledger).

Why it looks the way it does (measured on openmined-psi 2.0.4, see docs/psi.md):

* Every session draws fresh keys: encryption is deterministic per key, so a
  reused client key would let the server link repeated queries.
* The C++ calls release the GIL, so a thread pool uses every core; one C++
  object per task, rebuilt from the 32-byte key (the objects hold a BN_CTX and
  are not thread-safe). Keys are read once, on the calling thread, before any
  worker starts: 2.0.4's `GetPrivateKeyBytes` builds a Python object without
  holding the GIL.
* The client's items are sent in chunks (memory stays bounded, and the
  server's one long setup call overlaps with the client's encryption).
* A RAW setup (exact) is built from chunks encrypted in parallel; a GCS setup
  is one library call that runs while the client encrypts.
* GCS setups break inside the library when the hash range gets too large
  (usually `basic_string::_M_replace_aux`; the int64 overflow behind it is
  undefined behaviour and once passed silently in our tests), so
  `choose_data_structure` refuses such parameters before the library is
  called, or falls back to an exact RAW setup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from private_set_intersection.python import Request, ServerSetup
from private_set_intersection.python import _openmined_psi as cpp

from workbench.crypto.evaluation_budget import EvaluationBudget
from workbench.errors import WorkbenchError

DataStructure = Literal["auto", "gcs", "raw", "bloom"]
Send = Callable[[str, bytes], bytes]
"""Carries one message to the other party and returns the bytes the other party received: send(kind, payload)."""

SETUP, REQUEST, RESPONSE = "psi.setup", "psi.request", "psi.response"
DEFAULT_CHUNK = 100_000
"""Client items per request: ≤ 3.5 MB messages, no measurable per-chunk overhead above 25k items."""
GCS_MAX_HASH_RANGE = 4e18
"""openmined-psi computes the GCS hash range as an int64: max(nc, ns) * nc / fpr must stay well below 2**63."""
GCS_MAX_GAP = 1e15
"""Above this mean gap (hash range / server items) the Golomb parameter computation loses precision and fails."""
_STRUCTURES = {"gcs": cpp.data_structure.GCS, "raw": cpp.data_structure.Raw, "bloom": cpp.data_structure.BloomFilter}


class PsiParameterError(WorkbenchError, ValueError):
    """PSI parameters the library would fail on; the message says which value to change."""


def gcs_is_safe(n_client: int, n_server: int, fpr: float) -> bool:
    """Whether a GCS setup with these sizes and false-positive rate stays inside openmined-psi's numeric limits."""
    hash_range = max(n_client, n_server, 1) * max(n_client, 1) / fpr
    return hash_range < GCS_MAX_HASH_RANGE and hash_range / max(n_server, 1) < GCS_MAX_GAP


def choose_data_structure(requested: DataStructure, n_client: int, n_server: int, fpr: float) -> str:
    """The setup encoding to use, refusing GCS parameters the library would fail on.

    `auto` picks GCS (≈5 B per server item) when it is safe and the server's set
    is at most twice the client's: its setup is one single-threaded library call,
    which then overlaps with the client's encryption. Otherwise it picks RAW
    (35 B per item, exact), whose setup this module builds in parallel chunks.
    """
    if not 0.0 < fpr < 1.0:
        raise PsiParameterError(f"fpr must be between 0 and 1 (exclusive), got {fpr}")
    if requested == "auto":
        return "gcs" if gcs_is_safe(n_client, n_server, fpr) and n_server <= 2 * max(n_client, 1) else "raw"
    if requested == "gcs" and not gcs_is_safe(n_client, n_server, fpr):
        smallest = max(n_client, n_server, 1) * max(n_client, 1) / min(GCS_MAX_HASH_RANGE, GCS_MAX_GAP * max(n_server, 1))
        raise PsiParameterError(
            f"a GCS setup for {n_client} client and {n_server} server items at fpr={fpr:g} exceeds openmined-psi's hash range "
            f"(it would fail inside the library); use fpr >= {smallest:.2g}, or data_structure raw (exact, 35 B per server item)"
        )
    return requested


def _chunks(n: int, chunk_size: int, parallelism: int) -> list[int]:
    """Chunk offsets: at most `chunk_size` items each, and at least `parallelism` chunks when there are enough items."""
    size = max(1, min(chunk_size, -(-n // max(1, parallelism))))
    return list(range(0, n, size)) or [0]


def _text(items: Sequence[str]) -> list[str]:
    """Items as the library takes them; a lone surrogate (from undecodable bytes) has no UTF-8 form and is refused here."""
    out = list(items)
    for position, item in enumerate(out):
        if not isinstance(item, str):
            raise TypeError(f"PSI items are str; item {position} is {type(item).__name__}")
    try:
        "".join(out).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"a PSI item is not valid Unicode text ({error.reason}); decode identifiers as UTF-8 first") from None
    return out


class PsiServer:
    """The party whose set goes into the setup message; learns |client set| and nothing else."""

    def __init__(
        self,
        items: Sequence[str],
        *,
        reveal_intersection: bool,
        fpr: float = 1e-9,
        data_structure: DataStructure = "auto",
        chunk_size: int = DEFAULT_CHUNK,
        parallelism: int = 2,
        budget: EvaluationBudget | None = None,
    ) -> None:
        self.items = _text(items)
        self.budget = budget
        """The provider's cap on the client's items it evaluates; None: unlimited (library use, tests)."""
        self.reveal_intersection = reveal_intersection
        self.fpr = fpr
        self.data_structure = data_structure
        self.offsets = _chunks(len(self.items), chunk_size, parallelism)
        self._key = cpp.cpp_server.CreateWithNewKey(reveal_intersection).GetPrivateKeyBytes()

    def admit(self, n_client: int) -> None:
        """Refuse, before any message, a client whose set is larger than what the budget has left."""
        if self.budget is not None and n_client > self.budget.left:
            self.budget.charge(n_client)  # raises, naming the cap

    def structure(self, n_client: int) -> str:
        return choose_data_structure(self.data_structure, n_client, len(self.items), self.fpr)

    def setup(self, n_client: int) -> bytes:
        """The server's encrypted set in one library call (GCS or Bloom filter), sized for `n_client` items in all (the fpr covers the whole query)."""
        server = cpp.cpp_server.CreateFromKey(self._key, self.reveal_intersection)
        return bytes(server.CreateSetupMessage(self.fpr, max(n_client, 1), self.items, _STRUCTURES[self.structure(n_client)]).save())

    def encrypt(self, chunk: int) -> bytes:
        """One chunk of the server's items encrypted under the server key, for a RAW setup built in parallel.

        openmined-psi's client and server share one Encrypt (hash to P-256, then
        multiply by the key), so the client API with the server's key yields the
        exact elements of a RAW setup (tests/crypto/test_psi.py checks this
        against the library's own RAW setup).
        """
        end = self.offsets[chunk + 1] if chunk + 1 < len(self.offsets) else len(self.items)
        encrypter = cpp.cpp_client.CreateFromKey(self._key, self.reveal_intersection)
        return bytes(encrypter.CreateRequest(self.items[self.offsets[chunk] : end]).save())

    @staticmethod
    def raw_setup(chunks: Sequence[bytes]) -> bytes:
        """A RAW setup message from encrypted chunks; its elements must be sorted (the library looks them up by binary search)."""
        elements: list[bytes] = []
        for chunk in chunks:
            request = Request()
            request.ParseFromString(chunk)
            elements.extend(request.encrypted_elements)
        elements.sort()
        setup = ServerSetup()
        setup.raw.encrypted_elements.extend(elements)
        return bytes(setup.SerializeToString())

    def process(self, request: bytes) -> bytes:
        """Re-encrypt one chunk of the client's encrypted items under the server key, once the budget allows that many."""
        if self.budget is not None:
            parsed = Request()
            parsed.ParseFromString(request)
            self.budget.charge(len(parsed.encrypted_elements))
        server = cpp.cpp_server.CreateFromKey(self._key, self.reveal_intersection)
        return bytes(server.ProcessRequest(cpp.cpp_proto_request.Load(request)).save())


class PsiClient:
    """The party that learns the intersection (indices into its own items) or its size."""

    def __init__(self, items: Sequence[str], *, reveal_intersection: bool, chunk_size: int = DEFAULT_CHUNK, parallelism: int = 2) -> None:
        self.items = _text(items)
        self.reveal_intersection = reveal_intersection
        self.offsets = _chunks(len(self.items), chunk_size, parallelism)
        self._key = cpp.cpp_client.CreateWithNewKey(reveal_intersection).GetPrivateKeyBytes()

    def request(self, chunk: int) -> bytes:
        """The client's items of one chunk, hashed to the curve and encrypted under the client key."""
        end = self.offsets[chunk + 1] if chunk + 1 < len(self.offsets) else len(self.items)
        client = cpp.cpp_client.CreateFromKey(self._key, self.reveal_intersection)
        return bytes(client.CreateRequest(self.items[self.offsets[chunk] : end]).save())

    def intersect(self, setup: bytes, response: bytes, chunk: int) -> list[int] | int:
        """Indices (into all of the client's items) found in this chunk, or their number when the intersection is hidden."""
        client = cpp.cpp_client.CreateFromKey(self._key, self.reveal_intersection)
        parsed_setup, parsed_response = cpp.cpp_proto_server_setup.Load(setup), cpp.cpp_proto_response.Load(response)
        if not self.reveal_intersection:
            return int(client.GetIntersectionSize(parsed_setup, parsed_response))
        return [self.offsets[chunk] + index for index in client.GetIntersection(parsed_setup, parsed_response)]


@dataclass(frozen=True)
class PsiOutcome:
    """What the client learned: sorted indices into its items (reveal) and the intersection size."""

    size: int
    indices: list[int] | None


def run_psi(client: PsiClient, server: PsiServer, to_server: Send, to_client: Send, *, workers: int = 2) -> PsiOutcome:
    """One PSI session, both parties' computations pipelined on `workers` threads.

    The server's setup starts first (one long library call for GCS, parallel
    chunks for RAW) and runs while the client encrypts its chunks; each chunk is processed as soon as it has been
    sent, and intersected once the setup has arrived. Messages are sent from
    the calling thread only, in protocol order per chunk, so a ledger behind
    `to_server`/`to_client` needs no locking.
    """
    if client.reveal_intersection != server.reveal_intersection:
        raise ValueError("client and server must agree on reveal_intersection")
    n_client = len(client.items)
    server.admit(n_client)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="psi") as pool:
        raw = server.structure(n_client) == "raw"
        setup_parts = [pool.submit(server.encrypt, chunk) for chunk in range(len(server.offsets))] if raw else [pool.submit(server.setup, n_client)]
        requests = [pool.submit(client.request, chunk) for chunk in range(len(client.offsets))]
        responses: list[Future[bytes]] = [pool.submit(server.process, to_server(REQUEST, future.result())) for future in requests]
        setup = to_client(SETUP, server.raw_setup([part.result() for part in setup_parts]) if raw else setup_parts[0].result())
        results = [pool.submit(client.intersect, setup, to_client(RESPONSE, future.result()), chunk) for chunk, future in enumerate(responses)]
        found = [future.result() for future in results]
    if client.reveal_intersection:
        indices = sorted(index for chunk in found for index in chunk)  # type: ignore[union-attr]
        return PsiOutcome(size=len(indices), indices=indices)
    return PsiOutcome(size=sum(found), indices=None)  # type: ignore[arg-type]
