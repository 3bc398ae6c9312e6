"""A local federation admits only its own sites (issue 21): rogue SuperNodes are refused, and the refusal shows."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.fl.conftest import site_path
from workbench.fl import tls
from workbench.fl.deployment import FederationRecord, LocalFederation, NodeIdentity, _free_port, node_config_file, refused_in_log, submit_and_follow
from workbench.fl.plan import FLPlan
from workbench.fl.runtimes import run_embedded
from workbench.fl.superlink import socket_owner
from workbench.scratch import write_private

VICTIM = "mid"  # the hospital every rogue claims to be


def _rogue(federation: LocalFederation, name: str, flags: list[str], data: Path) -> subprocess.Popen[bytes]:
    """A SuperNode with a ClientApp worker, as a site would run them, claiming to be VICTIM with flipped labels."""
    port, config = _free_port(), node_config_file(federation.workdir / name, {"party": VICTIM, "data-path": str(data)})
    log = (federation.logs / f"{name}.log").open("wb")
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.fl.fast_supernode",
            "--superlink",
            federation.address,
            "--isolation",
            "process",
            "--port",
            str(port),
            "--node-config",
            str(config),
            *flags,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=federation.env,
    )
    subprocess.Popen(
        [sys.executable, "-m", "workbench.fl.clientapp_worker", "--runtime-api-address", f"127.0.0.1:{port}", "--insecure", "--parent-pid", str(node.pid)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=federation.env,
    )
    return node


def _control_client(federation: LocalFederation) -> Any:
    from flwr.supercore.control import ControlHttpClient
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor

    assert federation.credentials is not None
    return ControlHttpClient.from_server_address(
        federation.address,
        insecure=False,
        root_certificates=federation.credentials.ca.read_bytes(),
        interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr CLI")],
    )


def _register_through_control_api(federation: LocalFederation, key: tls.SiteKey) -> int:
    """What `flwr supernode register` does, for a key that is not a site's: the Control API has no account auth."""
    import httpx
    from flwr.proto.control_pb2 import RegisterNodeRequest  # pylint: disable=E0611

    client = _control_client(federation)
    try:
        client.RegisterNode(RegisterNodeRequest(public_key=key.public_pem, name=VICTIM))
    except httpx.HTTPStatusError as refused:
        return refused.response.status_code
    finally:
        client.close()
    return 200


def _activate_with_a_forged_signature(federation: LocalFederation, forger: tls.SiteKey) -> int:
    """Present the victim's (public) key, signed with another private key."""
    import httpx
    from cryptography.hazmat.primitives import serialization
    from flwr.proto.fleet_pb2 import ActivateNodeRequest  # pylint: disable=E0611
    from flwr.supernode.fleet_http_client import FleetHttpClient
    from flwr.supernode.node_auth_http_interceptor import NodeAuthHttpInterceptor

    assert federation.credentials is not None
    victim = federation.credentials.sites[VICTIM]
    private = serialization.load_ssh_private_key(forger.private_key.read_bytes(), None)
    public = serialization.load_pem_public_key(victim.public_pem)
    with FleetHttpClient.from_server_address(
        federation.address, False, federation.credentials.ca.read_bytes(), interceptors=[NodeAuthHttpInterceptor(private, public)]
    ) as client:  # type: ignore[arg-type]
        try:
            client.ActivateNode(ActivateNodeRequest(public_key=victim.public_pem, heartbeat_interval=30.0))
        except httpx.HTTPStatusError as refused:
            return refused.response.status_code
    return 200


def _acquire_task(address: str, root_certificates: bytes | None, task_type: str) -> int:
    """Ask a Runtime API for a task as a SuperExec would, without its secret: a task would hand over its token and message."""
    import httpx
    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=root_certificates is None,
        root_certificates=root_certificates,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
    )
    try:
        client.AcquireTask(AcquireTaskRequest(supported_task_types=[task_type]))
    except httpx.HTTPStatusError as refused:
        return refused.response.status_code
    finally:
        client.close()
    return 200


def _registered_node_ids(federation: LocalFederation) -> set[int]:
    from flwr.proto.control_pb2 import ListNodesRequest  # pylint: disable=E0611

    client = _control_client(federation)
    try:
        return {node.node_id for node in client.ListNodes(ListNodesRequest()).nodes_info}
    finally:
        client.close()


def test_rogue_supernodes_are_refused_and_the_run_is_unchanged(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path) -> None:
    plan = make_plan(rounds=3, node_timeout=8.0)
    alone = run_embedded(plan, site_configs, lambda r, m: None, lambda t: None)
    flipped = tmp_path / "flipped.parquet"
    pl.read_parquet(site_path(site_configs, VICTIM)).with_columns(~pl.col("y")).write_parquet(flipped)
    workdir = tmp_path / "federation"
    with LocalFederation(site_configs, workdir, poll=0.1) as federation:
        assert federation.credentials is not None
        ca = str(federation.credentials.ca)
        unknown, via_control, forger = (tls.site_key(tmp_path / "keys", name) for name in ("unknown", "control", "forger"))
        rogues = {
            "rogue-unregistered-key": ["--root-certificates", ca, "--auth-supernode-private-key", str(unknown.private_key)],
            "rogue-no-key": ["--root-certificates", ca],
            "rogue-insecure": ["--insecure"],
        }
        started = {name: _rogue(federation, name, flags, flipped) for name, flags in rogues.items()}
        try:
            assert _register_through_control_api(federation, via_control) == 403
            assert _activate_with_a_forged_signature(federation, forger) == 401
            assert _acquire_task(federation.address, federation.credentials.ca.read_bytes(), "flwr-serverapp") == 401
            worker = federation.sites[VICTIM][0].args
            assert _acquire_task(worker[worker.index("--runtime-api-address") + 1], None, "flwr-clientapp") == 401
            for name in ("rogue-unregistered-key", "rogue-no-key"):
                assert started[name].wait(timeout=60) != 0, name  # Flower's exit code 305: no connection to the SuperLink
            outcome = submit_and_follow(plan, federation.env, workdir / "out.jsonl", lambda r, m: None)
            registered, refused = _registered_node_ids(federation), federation.refused()
            assert started["rogue-insecure"].poll() is None  # it kept retrying in plaintext all along
        finally:
            for process in started.values():
                process.kill()
                process.wait()

    for name in rogues:  # none ever got a node id, so none was ever sent a message
        log = (workdir / "logs" / f"{name}.log").read_text()
        assert "SuperNode ID:" not in log and "Receiving:" not in log, name
    assert registered == {node.node_id for node in federation.identities.values()}
    assert outcome.history.keys() == alone.history.keys()
    for server_round, sites in alone.history.items():
        assert outcome.history[server_round].keys() == sites.keys()
        for site, metrics in sites.items():
            assert outcome.history[server_round][site] == pytest.approx(metrics, abs=1e-9), (server_round, site)
    assert outcome.params == pytest.approx(alone.params, abs=1e-9)

    seen = {(attempt.route, attempt.fingerprint) for attempt in refused}
    assert ("/v1/fleet/activate-node", unknown.fingerprint) in seen
    assert ("/v1/control/register-node", via_control.fingerprint) in seen
    assert any(route == "/v1/fleet/register-node" and fingerprint for route, fingerprint in seen)  # the key it made up itself
    assert ("/v1/fleet/activate-node", None) in seen  # the forged signature (HTTP 401)
    assert len(refused) == 4  # the plaintext SuperNode never got past TLS, and nothing logs that


def test_sites_are_registered_under_their_key_fingerprints(site_configs: list[dict[str, Any]], tmp_path: Path) -> None:
    with LocalFederation(site_configs[:1], tmp_path, poll=0.1) as federation:
        assert federation.credentials is not None
        key = federation.credentials.sites["big"]
        identity = federation.identities["big"]
        assert federation.refused() == []
    assert identity.party == "big" and identity.node_id > 0
    keygen = subprocess.run(["ssh-keygen", "-lf", str(key.public_key)], capture_output=True, text=True, check=True)
    assert identity.fingerprint == key.fingerprint == keygen.stdout.split()[1]


# An HTTPS request with no trust and no key at all, from the standard library, for a process of another user.
PROBE = """import http.client, ssl, sys
connection = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ssl._create_unverified_context())
connection.request("POST", sys.argv[2], body=b"", headers={"Content-Type": "application/protobuf"})
print(connection.getresponse().status)
"""
NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3", path="/usr/bin"), reason="needs root, to act as another user")
def test_processes_of_other_users_are_refused(site_configs: list[dict[str, Any]], tmp_path: Path) -> None:
    """Another local user could otherwise start a run of their own app, which the SuperExec would execute as this user."""
    with LocalFederation(site_configs[:1], tmp_path, poll=0.1) as federation:
        statuses = [
            subprocess.run(
                ["/usr/bin/python3", "-c", PROBE, str(federation.port), route], user=NOBODY, cwd="/", capture_output=True, text=True, check=True
            ).stdout.strip()
            for route in ("/v1/control/start-run", "/v1/fleet/activate-node")
        ]
        refused = federation.refused()
    assert statuses == ["403", "403"]
    assert [(r.route, r.reason) for r in refused] == [
        (route, f"a process of another user (uid {NOBODY})") for route in ("/v1/control/start-run", "/v1/fleet/activate-node")
    ]


def test_the_owner_of_a_loopback_connection_is_known() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            accepted, peer = server.accept()
            with accepted:
                assert peer == client.getsockname() and socket_owner(peer, server.getsockname()) == os.getuid()
                assert socket_owner(server.getsockname(), ("127.0.0.1", 9)) is None  # no such connection


def test_credentials_are_private_and_the_certificate_names_loopback(tmp_path: Path) -> None:
    from cryptography import x509

    credentials = tls.issue(tmp_path / "credentials", ["big", "small"])
    assert stat.S_IMODE(credentials.folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in credentials.folder.iterdir()} == {0o600}
    certificate = x509.load_pem_x509_certificate(credentials.certificate.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert certificate.issuer == x509.load_pem_x509_certificate(credentials.ca.read_bytes()).subject
    assert len(credentials.allowed_keys.read_text().splitlines()) == 2
    with pytest.raises(FileExistsError):  # a private file is never reused (nor one planted there before)
        write_private(credentials.ca, b"")


LOG = """\
\x1b[91mERROR \x1b[0m:     [/v1/fleet/activate-node][ApiError:2004] Attempted to register SuperNode with public key: b'{pem}', \
exception: No SuperNode found with the given public key.
\x1b[91mERROR \x1b[0m:     [/v1/fleet/register-node][ApiError:2001] Attempted to register SuperNode with public key: b'{pem}'
\x1b[91mERROR \x1b[0m:     [/v1/control/register-node][ApiError:9] Attempted to register SuperNode with public key: b'{pem}', which is \
not one of this run's sites
2026-12-01T22:30:11.451Z INFO [uvicorn.access] 127.0.0.1:41122 - "POST /v1/fleet/activate-node HTTP/1.1" 401
\x1b[91mERROR \x1b[0m:     [/v1/control/start-run][peer] Refused a request from ('127.0.0.1', 40112) by uid 65534, not the federation's user
2026-12-01T22:30:11.451Z INFO [uvicorn.access] 127.0.0.1:41122 - "POST /v1/fleet/activate-node HTTP/1.1" 200
"""


def test_refusals_are_read_from_the_superlink_log_and_kept_in_the_record(tmp_path: Path) -> None:
    key = tls.site_key(tmp_path / "keys", "rogue")
    pem = key.public_pem.decode().replace("\n", "\\n")
    refused = refused_in_log(LOG.format(pem=pem))
    assert [(r.route, r.fingerprint) for r in refused] == [
        ("/v1/fleet/activate-node", key.fingerprint),
        ("/v1/fleet/register-node", key.fingerprint),
        ("/v1/control/register-node", key.fingerprint),
        ("/v1/control/start-run", None),
        ("/v1/fleet/activate-node", None),
    ]
    assert refused[0].reason == "No SuperNode found with the given public key."
    record = FederationRecord({"big": NodeIdentity("big", key.fingerprint, 7)}, refused)
    (tmp_path / "federation.json").write_text(record.to_json())
    assert FederationRecord.read(tmp_path) == record
    assert FederationRecord.read(tmp_path / "nowhere") is None
