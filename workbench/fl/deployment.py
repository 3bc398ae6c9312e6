"""Flower's deployment engine: a SuperLink and one SuperNode per hospital as separate processes.

`LocalFederation` starts them on loopback for a run (and stops them after,
leaving no process behind); with a SuperLink address in the recipe, the
workbench only submits the run and the sites run their own SuperNodes on their
own machines with their own data (README: "Running across machines").

The slow default path measured in DESIGN.md (a fresh ClientApp process per
message, 3 s polling; ~34 s a round) is replaced by SuperNodes with short
polling (`fast_supernode`) and one long-running ClientApp worker per SuperNode
(`clientapp_worker`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workbench.fl.accounting_grid import Transfer
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.fl.server_app import FLOutcome, encode_plan
from workbench.fl.strategy import RoundObserver

APP_DIR = Path(__file__).parent / "app"
CONNECTION = "workbench"
STARTUP_SECONDS = 60.0


class DeploymentSettings(BaseModel):
    """Where the SuperLink is; by default the workbench starts one, and the sites' SuperNodes, on loopback."""

    model_config = ConfigDict(extra="forbid")

    superlink: str | None = Field(None, description="host:port of a running SuperLink; null starts a local federation on loopback.")
    root_certificates: str | None = Field(None, description="CA certificate (PEM) to verify the SuperLink's TLS certificate.")
    insecure: bool = Field(False, description="Talk to a remote SuperLink without TLS (a local federation always runs on loopback).")
    poll: float = Field(0.1, gt=0.0, le=5.0, description="Seconds between polls of SuperNodes and ClientApp workers.")


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


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FederationError(f"{what} exited at start (code {process.returncode}); see {log}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise FederationError(f"{what} did not listen on 127.0.0.1:{port} within {STARTUP_SECONDS:.0f} s; see {log}")


def _node_config(config: Mapping[str, Any]) -> str:
    """Flower's --node-config syntax: space-separated key=value, strings in TOML quotes."""
    return " ".join(f"{key}={json.dumps(str(value))}" for key, value in config.items())


class LocalFederation:
    """A SuperLink and, per site, a SuperNode plus its ClientApp worker, all on 127.0.0.1."""

    def __init__(self, node_configs: list[Mapping[str, Any]], workdir: Path, poll: float) -> None:
        self.node_configs = node_configs
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.port = _free_port()
        self.env = flower_env(workdir / "flwr-home", FLWR_SUPEREXEC_TASK_POLL_INTERVAL="0.2", WORKBENCH_POLL=str(poll))
        self.poll = poll
        self.superlink: subprocess.Popen[bytes] | None = None
        self.sites: dict[str, list[subprocess.Popen[bytes]]] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        # Own session each, so stopping one also stops what it spawned (ServerApp processes).
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def __enter__(self) -> LocalFederation:
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.superlink = self._start("superlink", [_bin("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
                                                       str(self.port), "--disable-runtime-dependency-installation"])
            _wait_for_port(self.port, self.superlink, "the SuperLink", self.logs / "superlink.log")
            for config in self.node_configs:
                self.start_site(config)
        except BaseException:
            self.__exit__()
            raise
        return self

    def start_site(self, config: Mapping[str, Any]) -> None:
        party, port = str(config["party"]), _free_port()
        node = self._start(f"supernode-{party}", [
            sys.executable, "-m", "workbench.fl.fast_supernode", "--insecure", "--superlink", self.address,
            "--isolation", "process", "--port", str(port), "--node-config", _node_config(config)])
        _wait_for_port(port, node, f"the SuperNode of {party}", self.logs / f"supernode-{party}.log")
        worker = self._start(f"clientapp-{party}", [
            sys.executable, "-m", "workbench.fl.clientapp_worker", "--runtime-api-address", f"127.0.0.1:{port}",
            "--insecure", "--poll", str(self.poll), "--parent-pid", str(node.pid)])
        self.sites[party] = [worker, node]

    def stop_site(self, party: str, sig: int = signal.SIGTERM) -> None:
        """Stop a site's worker and SuperNode (tests use it to rehearse a site dying mid-run)."""
        for process in self.sites.pop(party, []):
            _stop(process, sig)

    def __exit__(self, *exc: object) -> None:
        for party in list(self.sites):
            self.stop_site(party)
        if self.superlink is not None:
            _stop(self.superlink, signal.SIGTERM)
            self.superlink = None

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for site in self.sites.values() for p in site] + ([self.superlink] if self.superlink else [])


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
        try:  # children of the group that outlived their parent (e.g. a ServerApp)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_connection(flwr_home: Path, address: str, settings: DeploymentSettings, local: bool) -> None:
    """`flwr run` reads where the SuperLink is from $FLWR_HOME/config.toml."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]", f'address = "{address}"']
    if local or settings.insecure:
        lines.append("insecure = true")
    elif settings.root_certificates:
        lines.append(f"root-certificates = {json.dumps(str(Path(settings.root_certificates).resolve()))}")
    (flwr_home / "config.toml").write_text("\n".join(lines) + "\n")


def submit_and_follow(plan: FLPlan, env: dict[str, str], output: Path, observer: RoundObserver,
                      alive: Callable[[], None] = lambda: None, public_context: bytes | None = None) -> FLOutcome:
    """Start the run with `flwr run`, then follow the ServerApp's output file until it ends."""
    values = {"workbench-plan": encode_plan(plan), "workbench-output": str(output)}
    if public_context is not None:  # with a public key it runs to megabytes: too long for a command line
        values["workbench-ckks"] = base64.b64encode(public_context).decode()
    overrides = output.with_name("run-config.toml")  # flwr reads it here and sends it to the SuperLink
    overrides.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()))
    submitted = subprocess.run([_bin("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config", str(overrides), "--format", "json"],
                               capture_output=True, text=True, env=env, timeout=STARTUP_SECONDS)
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
def federation(node_configs: list[Mapping[str, Any]], workdir: Path, settings: DeploymentSettings) -> Iterator[tuple[dict[str, str], Callable[[], None]]]:
    """The environment `flwr run` needs, and a liveness check: a local federation, or the given SuperLink."""
    if settings.superlink:
        env = flower_env(workdir / "flwr-home")
        write_connection(workdir / "flwr-home", settings.superlink, settings, local=False)
        yield env, lambda: None
        return
    with LocalFederation(node_configs, workdir, settings.poll) as local:
        write_connection(workdir / "flwr-home", local.address, settings, local=True)

        def alive() -> None:
            if local.superlink is not None and local.superlink.poll() is not None:
                raise FederationError(f"the SuperLink exited (code {local.superlink.returncode}); see {local.logs / 'superlink.log'}")

        yield local.env, alive


def run_deployment(plan: FLPlan, node_configs: list[Mapping[str, Any]], observer: RoundObserver,
                   on_transfer: Callable[[Transfer], None], settings: DeploymentSettings, workdir: Path,
                   public_context: bytes | None = None) -> FLOutcome:
    with federation(node_configs, workdir, settings) as (env, alive):
        outcome = submit_and_follow(plan, env, workdir / "server-output.jsonl", observer, alive, public_context)
    for transfer in outcome.transfers:
        on_transfer(transfer)
    return outcome
