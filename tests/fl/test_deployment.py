"""The deployment runtime on loopback: real SuperLink, SuperNodes and ClientApp workers as processes."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.fl.deployment import LocalFederation, submit_and_follow
from workbench.fl.errors import FederationError
from workbench.fl.plan import FLPlan
from workbench.recipe import load_recipe
from workbench.runner import run_recipe

from .dropouts import run_with_victims

RECIPE = Path(__file__).parents[2] / "recipes" / "uci_heart.yaml"


def _fl_step(recipe_path: Path) -> int:
    return next(i for i, step in enumerate(load_recipe(recipe_path).steps) if step.kind == "fl_train")


def test_same_recipe_same_metrics_on_embedded_and_deployment(tmp_path: Path) -> None:
    step = _fl_step(RECIPE)
    runs = {}
    for runtime in ("embedded", "deployment"):
        recipe = load_recipe(RECIPE, [f"steps[{step}].params.runtime={runtime}", f"steps[{step}].params.rounds=3"])
        runs[runtime] = run_recipe(recipe, tmp_path / runtime)
    embedded, deployed = (runs[r].metrics["steps"] for r in ("embedded", "deployment"))
    for site, scores in embedded["evaluate"].items():
        for metric in ("auc", "accuracy", "brier"):
            assert deployed["evaluate"][site]["federated"][metric] == pytest.approx(scores["federated"][metric], abs=1e-6)
    for site in ("cleveland", "switzerland"):
        a, b = (runs[r].stores[site].get("model/federated").params for r in ("embedded", "deployment"))
        assert abs(a - b).max() < 1e-6
    kinds = lambda result: sorted((m.sender, m.receiver, m.kind) for m in result.ledger.messages if m.step == "fl_train")  # noqa: E731
    assert kinds(runs["deployment"]) == kinds(runs["embedded"])


def _federation_run(
    site_configs: list[dict[str, Any]], plan: FLPlan, tmp_path: Path, on_round: Callable[[LocalFederation, int], None]
) -> tuple[Any, LocalFederation]:
    with LocalFederation(site_configs, tmp_path, poll=0.1) as federation:
        outcome = submit_and_follow(plan, federation.env, tmp_path / "out.jsonl", lambda r, m: on_round(federation, r))
    return outcome, federation


def _kill_after_round_2(site: str, sig: int) -> Callable[[LocalFederation, int], None]:
    def on_round(federation: LocalFederation, server_round: int) -> None:
        if server_round == 2:
            federation.stop_site(site, sig)

    return on_round


def test_a_supernode_that_dies_fails_the_run_naming_the_site(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path) -> None:
    plan = make_plan(rounds=6, node_timeout=8.0)
    with pytest.raises(FederationError, match="round [34].*\\bmid\\b") as caught:
        _federation_run(site_configs, plan, tmp_path, _kill_after_round_2("mid", signal.SIGKILL))
    assert "min_available_clients=3" in str(caught.value)


def test_no_process_is_left_behind(site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path) -> None:
    with LocalFederation(site_configs, tmp_path, poll=0.1) as federation:
        started = federation.processes()
        assert len(started) == 2 + 2 * len(site_configs) and all(p.poll() is None for p in started)  # SuperLink, SuperExec
    assert all(p.poll() is not None for p in started)
    logged = json.dumps(sorted(path.name for path in (tmp_path / "logs").iterdir()))
    assert "supernode-small.log" in logged and "clientapp-small.log" in logged


def _processes_mentioning(marker: str) -> dict[int, list[str]]:
    """Live processes whose command line or environment mentions `marker` (a run's private folder), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [arg.decode(errors="replace") for arg in (entry / "cmdline").read_bytes().split(b"\0") if arg]
        except OSError:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # Flower's SuperExec makes itself non-dumpable; its command line still names the folder
            environ = b""
        if argv and (any(marker in arg for arg in argv) or marker.encode() in environ):
            found[int(entry.name)] = argv
    return found


def _role(argv: list[str]) -> str:
    for module, role in (
        ("workbench.fl.superlink", "superlink-" + (argv[3] if len(argv) > 3 else "")),
        ("workbench.fl.fast_supernode", "supernode"),
        ("workbench.fl.clientapp_worker", "clientapp-worker"),
    ):
        if module in argv:
            return role
    if any(arg.endswith("flwr-serverapp") for arg in argv):
        return "flwr-serverapp"
    return "workbench" if "workbench" in argv and "run" in argv else "other"


@dataclass
class KilledRun:
    private: Path  # TMPDIR of the run: its fl_train workdir is a folder in there
    during: dict[int, list[str]]  # the run's processes while training was under way
    left: dict[int, list[str]]  # what was still alive after SIGKILL and the wait


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledRun]:
    """`workbench run` of a deployment recipe in a subprocess, SIGKILLed once federated rounds are under way."""
    root = tmp_path_factory.mktemp("killed")
    private, out, step = root / "tmp", root / "run", _fl_step(RECIPE)
    private.mkdir()
    main = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "run",
            str(RECIPE),
            "--out",
            str(out),
            "--set",
            f"steps[{step}].params.runtime=deployment",
            "--set",
            f"steps[{step}].params.rounds=500",
        ],
        env={**os.environ, "TMPDIR": str(private)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    during: dict[int, list[str]] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and main.poll() is None:
            events = (out / "events.jsonl").read_text().splitlines() if (out / "events.jsonl").exists() else []
            if any((e := json.loads(line))["type"] == "progress" and e["step"] == "fl_train" for line in events):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no federated round within 300 s (workbench exited with {main.returncode})")
        during = _processes_mentioning(str(private))
        main.send_signal(signal.SIGKILL)
        main.wait()
        deadline = time.monotonic() + 15
        while (left := _processes_mentioning(str(private))) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield KilledRun(private, during, left)
    finally:
        main.kill()
        for pid in _processes_mentioning(str(private)):  # only if the test failed: never leave them to the next one
            if pid in during:
                os.kill(pid, signal.SIGKILL)


def test_a_sigkilled_workbench_run_leaves_no_process_behind(killed_run: KilledRun) -> None:
    roles = sorted(_role(argv) for argv in killed_run.during.values())
    sites = 4  # uci_heart's hospitals
    assert roles == sorted(["workbench", "superlink-link", "superlink-exec", "flwr-serverapp"] + ["supernode", "clientapp-worker"] * sites)
    assert killed_run.left == {}


def test_no_secret_or_token_is_on_a_command_line(killed_run: KilledRun) -> None:
    """What `ps` shows every local user: no task token, no node config, only paths to 0600 files in 0700 folders."""
    for argv in (argv for argv in killed_run.during.values() if _role(argv) != "workbench"):
        line = " ".join(argv)
        assert "--token " not in line and not re.search(r"[0-9a-f]{32,}", line), argv
        assert not re.search(r"data-path|ckks-context|\.parquet", line), argv
        for arg in argv:
            path = Path(arg)
            if arg.startswith(str(killed_run.private)) and path.is_file():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700, arg


def _kill_once_sent(federation: LocalFederation, site: str, message_type: str, count: int) -> threading.Thread:
    """A watcher that SIGKILLs a site's SuperNode (and so its worker) the moment its log says the count-th reply of
    `message_type` went out, before the site can answer the next message."""

    def watch() -> None:
        log, deadline = federation.logs / f"supernode-{site}.log", time.monotonic() + 120
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            sending = [m.end() for m in re.finditer(f"Sending: {message_type} message", text)]
            if len(sending) >= count and "Sent successfully" in text[sending[count - 1] :]:
                federation.stop_site(site, signal.SIGKILL)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_secagg_survives_a_supernode_killed_between_masking_and_unmasking(
    site_configs: list[dict[str, Any]], make_plan: Callable[..., FLPlan], tmp_path: Path
) -> None:
    """Issue 14: 'small' sends its masked update of round 2 and dies before Unmasking. The round completes: the others'
    shares of its self-mask seed unmask its input, the sum is plain FedAvg's with the same site gone at the same moment
    (within the quantization error), and 'small' is named as dropped. It is also the deployment runtime's test that a run
    goes on without a dead SuperNode when the recipe allows, and leaves no process behind."""
    plan = make_plan(aggregation="secagg", rounds=2, node_timeout=5.0, min_available_clients=2)
    with LocalFederation(site_configs, tmp_path, poll=0.1) as federation:
        watcher = _kill_once_sent(federation, "small", "train", 2)
        outcome = submit_and_follow(plan, federation.env, tmp_path / "out.jsonl", lambda r, m: None)
        watcher.join(timeout=1)
    assert outcome.dropped == {2: ["small"]}
    assert "train-loss" in outcome.history[2]["small"] and "auc" not in outcome.history[2]["small"], "trained, never evaluated"
    plain = run_with_victims(site_configs, make_plan(rounds=2, min_available_clients=2), {"small": (2, "train")})
    assert np.abs(np.subtract(outcome.params, plain.params)).max() < 1e-4
    assert all(process.poll() is not None for process in federation.processes()) and not federation.sites
