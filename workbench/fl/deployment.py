"""Flower's deployment engine: a SuperLink and one SuperNode per hospital as separate processes.

`LocalFederation` starts them on loopback for a run (and stops them after,
leaving no process behind, even when the workbench itself is killed); with a
SuperLink address in the recipe, the workbench only submits the run and the
sites run their own SuperNodes on their own machines with their own data
(README: "Running across machines").

A local federation runs as a real one should: TLS with a throw-away CA, and
SuperNode authentication, so that only the run's sites (their keys registered
before any SuperNode starts) can join; other attempts are refused and found
in the SuperLink's log (`LocalFederation.refused`). No secret or token is on
a command line: node configs, keys and task tokens are 0600 files in 0700
folders of the run's private directory.

The slow default path measured in DESIGN.md (a fresh ClientApp process per
message, 3 s polling; ~34 s a round) is replaced by SuperNodes with short
polling (`fast_supernode`) and one long-running ClientApp worker per SuperNode
(`clientapp_worker`).
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.fl import tls
from workbench.fl.accounting_grid import Transfer
from workbench.fl.errors import FederationError
from workbench.fl.lifetime import die_with_parent
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, encode_plan
from workbench.fl.settings import DeploymentSettings  # defined there (a recipe validates without Flower); re-exported here
from workbench.fl.strategy import RoundObserver
from workbench.scratch import write_private

APP_DIR = Path(__file__).parent / "app"
CONNECTION = "workbench"
STARTUP_SECONDS = 60.0
RECORD = "federation.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeIdentity:
    """Who a site's SuperNode is to the SuperLink: its registered key (OpenSSH SHA256 fingerprint) and Flower node id."""

    party: str
    fingerprint: str
    node_id: int


@dataclass(frozen=True)
class RefusedNode:
    """A connection attempt the SuperLink refused, as its log tells it."""

    route: str  # e.g. /v1/fleet/activate-node
    reason: str
    fingerprint: str | None  # of the key it presented, when the SuperLink logged one


@dataclass(frozen=True)
class FederationRecord:
    """What a local federation tells about who took part: for the run's manifest and report."""

    nodes: dict[str, NodeIdentity]
    refused: list[RefusedNode]

    def to_json(self) -> str:
        return json.dumps(
            {"nodes": {party: asdict(node) for party, node in self.nodes.items()}, "refused": [asdict(attempt) for attempt in self.refused]}, indent=1
        )

    @classmethod
    def read(cls, workdir: Path) -> FederationRecord | None:
        """The record `run_deployment` left in its workdir; None when no local federation ran there."""
        path = workdir / RECORD
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls({party: NodeIdentity(**node) for party, node in data["nodes"].items()}, [RefusedNode(**r) for r in data["refused"]])


def _bin(name: str) -> str:
    """Flower's console scripts live beside this interpreter (the venv the workbench runs in)."""
    return str(Path(sys.executable).with_name(name))


def flower_env(flwr_home: Path, **extra: str) -> dict[str, str]:
    """Flower's processes find each other's scripts on PATH, and their state under FLWR_HOME."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "FLWR_HOME": str(flwr_home), "FLWR_TELEMETRY_ENABLED": "0", **extra}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FederationError(f"{what} exited at start (code {process.returncode}); see {log_file}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise FederationError(f"{what} did not listen on 127.0.0.1:{port} within {STARTUP_SECONDS:.0f} s; see {log_file}")


def node_config_file(folder: Path, config: Mapping[str, Any]) -> Path:
    """A node config as the TOML file `--node-config` accepts: paths in it stay off the command line (0600)."""
    text = "".join(f"{json.dumps(str(key))} = {json.dumps(str(value))}\n" for key, value in config.items())
    path = folder / f"{config['party']}.toml"
    path.unlink(missing_ok=True)  # a site started again
    return write_private(path, text.encode())


_FLOWER_REFUSAL = re.compile(
    r"\[(?P<route>/v1/[\w/-]+)\]\[ApiError:(?P<code>[^\]]+)\] (?P<reason>Attempted to register SuperNode "
    r"with public key: (?P<key>b'[^']*'|b\"[^\"]*\")[^\n]*)"
)
_OTHER_USER = re.compile(r"\[(?P<route>/[\w/-]*)\]\[peer\] Refused a request from (?P<peer>.+?) by uid (?P<uid>\w+), not the federation's user")
_UNAUTHENTICATED = re.compile(r'"POST (?P<route>/v1/fleet/[\w-]+) HTTP/[\d.]+" 401')


def refused_in_log(text: str) -> list[RefusedNode]:
    """Refusals in a SuperLink's log: Flower's (an unregistered or self-registering SuperNode), the workbench's (a key
    registered through the Control API that is not a site's, any request by another user's process) and requests whose
    signature did not verify. A client without TLS is refused at the handshake, which nothing logs (uvloop's TLS layer
    drops it), so it is not here."""
    refused = []
    for match in _FLOWER_REFUSAL.finditer(text):
        try:
            fingerprint = tls.fingerprint(ast.literal_eval(match["key"]))
        except (ValueError, SyntaxError, TypeError):
            fingerprint = None
        reason = match["reason"].split(", exception: ")[-1] if ", exception: " in match["reason"] else f"ApiError {match['code']}"
        refused.append(RefusedNode(match["route"], reason, fingerprint))
    refused += [RefusedNode(m["route"], f"a process of another user (uid {m['uid']})", None) for m in _OTHER_USER.finditer(text)]
    refused += [RefusedNode(m["route"], "invalid SuperNode authentication (HTTP 401)", None) for m in _UNAUTHENTICATED.finditer(text)]
    return refused


class LocalFederation:
    """A SuperLink with its SuperExec and, per site, a SuperNode plus its ClientApp worker, all on 127.0.0.1."""

    def __init__(self, node_configs: list[Mapping[str, Any]], workdir: Path, poll: float) -> None:
        self.node_configs = node_configs
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.flwr_home = workdir / "flwr-home"
        self.port = _free_port()
        # Only Flower's HTTP APIs, on 127.0.0.1: its legacy gRPC ones (opt-in by these variables) bind other addresses.
        self.env = flower_env(
            self.flwr_home,
            FLWR_SUPEREXEC_TASK_POLL_INTERVAL="0.2",
            WORKBENCH_POLL=str(poll),
            FLWR_INTERNAL_GRPC_CONTROL_API="0",
            FLWR_INTERNAL_GRPC_FLEET_API="0",
        )
        self.poll = poll
        self.credentials: tls.Credentials | None = None
        self.identities: dict[str, NodeIdentity] = {}
        self.superlink: subprocess.Popen[bytes] | None = None
        self.superexec: subprocess.Popen[bytes] | None = None
        self.sites: dict[str, list[subprocess.Popen[bytes]]] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log_file = (self.logs / f"{name}.log").open("wb")
        # Own session each, so stopping one also stops what it spawned; SIGKILLed when the thread that started it ends,
        # however this process dies.
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, preexec_fn=die_with_parent())

    def __enter__(self) -> LocalFederation:
        self.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            credentials = self.credentials = tls.issue(self.workdir / "credentials", [str(c["party"]) for c in self.node_configs])
            self.superlink = self._start(
                "superlink",
                [
                    sys.executable,
                    "-m",
                    "workbench.fl.superlink",
                    "link",
                    "--allowed-keys",
                    str(credentials.allowed_keys),
                    "--same-user-only",
                    "--ssl-ca-certfile",
                    str(credentials.ca),
                    "--ssl-certfile",
                    str(credentials.certificate),
                    "--ssl-keyfile",
                    str(credentials.key),
                    "--enable-supernode-auth",
                    "--isolation",
                    "process",
                    "--superexec-auth-secret-file",
                    str(credentials.superexec_secret),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--disable-runtime-dependency-installation",
                ],
            )
            _wait_for_port(self.port, self.superlink, "the SuperLink", self.logs / "superlink.log")
            write_connection(self.flwr_home, self.address, insecure=False, root_certificates=str(credentials.ca))
            self._register(credentials)
            self.superexec = self._start(
                "superexec",
                [
                    sys.executable,
                    "-m",
                    "workbench.fl.superlink",
                    "exec",
                    "--token-dir",
                    str(credentials.folder),
                    "--runtime-api-address",
                    self.address,
                    "--root-certificates",
                    str(credentials.ca),
                    "--superexec-auth-secret-file",
                    str(credentials.superexec_secret),
                    "--parent-pid",
                    str(self.superlink.pid),
                ],
            )
            for config in self.node_configs:
                self.start_site(config)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _register(self, credentials: tls.Credentials) -> None:
        """Register each site's public key through the Control API (what `flwr supernode register` does) before any SuperNode starts."""
        from flwr.proto.control_pb2 import RegisterNodeRequest  # pylint: disable=E0611
        from flwr.supercore.control import ControlHttpClient
        from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor

        client = ControlHttpClient.from_server_address(
            self.address, insecure=False, root_certificates=credentials.ca.read_bytes(), interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr CLI")]
        )
        try:
            for party, key in credentials.sites.items():
                response = client.RegisterNode(RegisterNodeRequest(public_key=key.public_pem, name=party))
                self.identities[party] = NodeIdentity(party, key.fingerprint, int(response.node_id))
        finally:
            client.close()

    def start_site(self, config: Mapping[str, Any]) -> None:
        party, port = str(config["party"]), _free_port()
        if self.credentials is None or party not in self.credentials.sites:
            raise FederationError(f"no key was registered for {party!r}; a local federation starts only the sites it was made with")
        key, ca = self.credentials.sites[party], str(self.credentials.ca)
        node = self._start(
            f"supernode-{party}",
            [
                sys.executable,
                "-m",
                "workbench.fl.fast_supernode",
                "--superlink",
                self.address,
                "--root-certificates",
                ca,
                "--auth-supernode-private-key",
                str(key.private_key),
                "--isolation",
                "process",
                "--port",
                str(port),
                "--superexec-auth-secret-file",
                str(key.superexec_secret),
                "--node-config",
                str(node_config_file(self.workdir / "nodes", config)),
            ],
        )
        _wait_for_port(port, node, f"the SuperNode of {party}", self.logs / f"supernode-{party}.log")
        worker = self._start(
            f"clientapp-{party}",
            [
                sys.executable,
                "-m",
                "workbench.fl.clientapp_worker",
                "--runtime-api-address",
                f"127.0.0.1:{port}",
                "--insecure",
                "--superexec-auth-secret-file",
                str(key.superexec_secret),
                "--poll",
                str(self.poll),
                "--parent-pid",
                str(node.pid),
            ],
        )
        self.sites[party] = [worker, node]

    def stop_site(self, party: str, sig: int = signal.SIGTERM) -> None:
        """Stop a site's worker and SuperNode (tests use it to rehearse a site dying mid-run)."""
        for process in self.sites.pop(party, []):
            _stop(process, sig)

    def __exit__(self, *exc: object) -> None:
        for party in list(self.sites):
            self.stop_site(party)
        for name in ("superexec", "superlink"):
            process = getattr(self, name)
            if process is not None:
                _stop(process, signal.SIGTERM)
                setattr(self, name, None)

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for site in self.sites.values() for p in site] + [p for p in (self.superexec, self.superlink) if p]

    def refused(self) -> list[RefusedNode]:
        """Connection attempts the SuperLink refused so far (an unknown key, no key, a bad signature)."""
        path = self.logs / "superlink.log"
        return refused_in_log(path.read_text(errors="replace")) if path.exists() else []

    def record(self) -> FederationRecord:
        return FederationRecord(dict(self.identities), self.refused())


def _stop(process: subprocess.Popen[bytes], sig: int, grace: float = 10.0) -> None:
    """Signal the process group; SIGKILL it if it has not gone after `grace` seconds."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        try:  # children of the group that outlived their parent
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_connection(flwr_home: Path, address: str, insecure: bool, root_certificates: str | None) -> None:
    """`flwr run` reads where the SuperLink is, and how to trust it, from $FLWR_HOME/config.toml."""
    flwr_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]", f'address = "{address}"']
    if insecure:
        lines.append("insecure = true")
    elif root_certificates:
        lines.append(f"root-certificates = {json.dumps(str(Path(root_certificates).resolve()))}")
    (flwr_home / "config.toml").write_text("\n".join(lines) + "\n")


def submit_and_follow(
    plan: FLPlan, env: dict[str, str], output: Path, observer: RoundObserver, alive: Callable[[], None] = lambda: None, public_context: bytes | None = None
) -> FLOutcome:
    """Start the run with `flwr run`, then follow the ServerApp's output file until it ends."""
    values = {"workbench-plan": encode_plan(plan), "workbench-output": str(output)}
    if public_context is not None:  # with a public key it runs to megabytes: too long for a command line
        values["workbench-ckks"] = base64.b64encode(public_context).decode()
    overrides = output.with_name("run-config.toml")  # flwr reads it here and sends it to the SuperLink
    overrides.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    submitted = subprocess.run(
        [_bin("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config", str(overrides), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=STARTUP_SECONDS,
        preexec_fn=die_with_parent(),
    )
    if submitted.returncode != 0:
        raise FederationError(f"flwr run failed: {(submitted.stdout + submitted.stderr).strip()[-600:]}")
    deadline = time.monotonic() + STARTUP_SECONDS + (plan.rounds + 1) * 2 * plan.node_timeout
    seen = 0
    while time.monotonic() < deadline:
        alive()
        lines = output.read_text().splitlines() if output.exists() else []
        for line in lines[seen:]:
            record = json.loads(line)
            if "round" in record:
                observer(int(record["round"]), record["sites"])
            elif "error" in record:
                raise FederationError(record["error"])
            elif "outcome" in record:
                return FLOutcome.from_dict(record["outcome"])
        seen = len(lines)
        time.sleep(0.1)
    raise FederationError(f"the federated run did not finish within {deadline:.0f} s; the ServerApp's log is on the SuperLink")


@contextmanager
def federation(
    node_configs: list[Mapping[str, Any]], workdir: Path, settings: DeploymentSettings
) -> Iterator[tuple[dict[str, str], Callable[[], None], LocalFederation | None]]:
    """The environment `flwr run` needs, a liveness check, and the local federation if one was started here."""
    if settings.superlink:
        env = flower_env(workdir / "flwr-home")
        write_connection(workdir / "flwr-home", settings.superlink, settings.insecure, settings.root_certificates)
        yield env, lambda: None, None
        return
    with LocalFederation(node_configs, workdir, settings.poll) as local:

        def alive() -> None:
            for name, process in (("SuperLink", local.superlink), ("SuperExec", local.superexec)):
                if process is not None and process.poll() is not None:
                    raise FederationError(f"the {name} exited (code {process.returncode}); see {local.logs}")

        yield local.env, alive, local


def run_deployment(
    plan: FLPlan,
    node_configs: list[Mapping[str, Any]],
    observer: RoundObserver,
    on_transfer: Callable[[Transfer], None],
    settings: DeploymentSettings,
    workdir: Path,
    public_context: bytes | None = None,
) -> FLOutcome:
    """Run on the deployment engine; a local federation leaves its `FederationRecord` in `workdir` (`FederationRecord.read`)."""
    with federation(node_configs, workdir, settings) as (env, alive, local):
        try:
            outcome = submit_and_follow(plan, env, workdir / "server-output.jsonl", observer, alive, public_context)
        finally:
            if local is not None:
                record = local.record()
                (workdir / RECORD).write_text(record.to_json())
                if record.refused:
                    log.warning(
                        "the SuperLink refused %d connection attempt(s) by unknown SuperNodes: %s",
                        len(record.refused),
                        "; ".join(f"{r.route} {r.fingerprint or ''} {r.reason}" for r in record.refused),
                    )
    for transfer in outcome.transfers:
        on_transfer(transfer)
    return outcome
