from __future__ import annotations

import pytest
from private_set_intersection.python import _openmined_psi as cpp

from workbench.crypto.psi import PsiClient, PsiParameterError, PsiServer, choose_data_structure, gcs_is_safe, run_psi

CLIENT = [f"C{i:05d}" for i in range(300)]
SERVER = [f"C{i:05d}" for i in range(200, 700)]
COMMON = set(CLIENT) & set(SERVER)


def _session(reveal: bool, **server_options: object) -> tuple[object, list[tuple[str, int]]]:
    sent: list[tuple[str, int]] = []

    def carry(kind: str, payload: bytes) -> bytes:
        sent.append((kind, len(payload)))
        return payload

    client = PsiClient(CLIENT, reveal_intersection=reveal, chunk_size=100)
    server = PsiServer(SERVER, reveal_intersection=reveal, chunk_size=100, **server_options)  # type: ignore[arg-type]
    return run_psi(client, server, carry, carry), sent


@pytest.mark.parametrize("structure", ["gcs", "raw", "bloom"])
def test_the_client_learns_exactly_its_common_items(structure: str) -> None:
    outcome, sent = _session(True, data_structure=structure)
    assert {CLIENT[i] for i in outcome.indices} == COMMON and outcome.size == len(COMMON)
    assert [kind for kind, _ in sent].count("psi.request") == 3 and [kind for kind, _ in sent].count("psi.response") == 3


def test_cardinality_gives_the_count_only() -> None:
    outcome, _ = _session(False)
    assert outcome.indices is None and outcome.size == len(COMMON)


def test_raw_setup_built_in_chunks_equals_the_librarys_own() -> None:
    """The parallel RAW setup relies on client and server sharing one Encrypt in openmined-psi 2.0.4."""
    server = PsiServer(SERVER, reveal_intersection=True, data_structure="raw", chunk_size=128)
    ours = server.raw_setup([server.encrypt(chunk) for chunk in range(len(server.offsets))])
    library = cpp.cpp_server.CreateFromKey(server._key, True).CreateSetupMessage(0.5, 10, SERVER, cpp.data_structure.Raw).save()
    assert len(server.offsets) == 4 and ours == bytes(library)


def test_every_session_has_fresh_keys() -> None:
    first, second = (PsiClient(CLIENT, reveal_intersection=True).request(0) for _ in range(2))
    assert first != second


def test_empty_client_set_finds_nothing() -> None:
    outcome = run_psi(PsiClient([], reveal_intersection=True), PsiServer(SERVER, reveal_intersection=True), lambda k, b: b, lambda k, b: b)
    assert outcome.size == 0 and outcome.indices == []


def test_gcs_guard_refuses_parameters_the_library_fails_on() -> None:
    assert gcs_is_safe(10**6, 10**6, 1e-6) and not gcs_is_safe(10**6, 10**6, 1e-9) and not gcs_is_safe(10**6, 10, 1e-6)
    with pytest.raises(PsiParameterError, match=r"use fpr >= 2\.5e-07, or data_structure raw"):
        choose_data_structure("gcs", 10**6, 10**6, 1e-9)
    assert choose_data_structure("auto", 10**6, 10**6, 1e-9) == "raw"
    assert choose_data_structure("auto", 10**6, 10**6, 1e-6) == "gcs"
    assert choose_data_structure("auto", 5000, 23550, 1e-9) == "raw"  # a set many times the client's: parallel RAW setup
    with pytest.raises(PsiParameterError, match="between 0 and 1"):
        choose_data_structure("raw", 1, 1, 1.0)


def test_the_guarded_failure_is_real() -> None:
    """What the guard prevents: openmined-psi 2.0.4 fails deep inside when the GCS gap gets too large.

    (This case is a floating-point failure of the Golomb parameter and so is
    repeatable; the int64 overflow of larger ranges is undefined behaviour and
    has been seen to pass silently.)
    """
    assert not gcs_is_safe(10**6, 10, 1e-6)
    server = cpp.cpp_server.CreateWithNewKey(True)
    with pytest.raises(ValueError, match="basic_string"):
        server.CreateSetupMessage(1e-6, 10**6, [f"s{i}" for i in range(10)], cpp.data_structure.GCS)


def test_text_that_is_not_unicode_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid Unicode"):
        PsiClient(["ok", "bad\udcff"], reveal_intersection=True)
    with pytest.raises(TypeError, match="item 1 is int"):
        PsiServer(["ok", 3], reveal_intersection=True)  # type: ignore[list-item]
