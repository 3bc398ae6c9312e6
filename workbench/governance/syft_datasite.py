"""One owner's PySyft datasite for one approval, run by syft's own Python (never imported by the workbench).

syft 0.9.5 cannot share the workbench's environment (docs/governance.md), so `syft_bridge` starts this file with
the interpreter of a separate environment and talks to it in JSON lines: a job on stdin, events on stdout after
EVENT_PREFIX (syft prints its own lines there too), the owner's decision on stdin. The datasite lives in-process
for the one approval and keeps its database and blobs under TMPDIR, which the bridge points at a private folder it
removes afterwards.

The flow is syft's own: the owner uploads its table (private, with its mock beside it); a researcher account
submits the recipe as a code request whose source pins the recipe hash; syft refuses to run it on the private
table while it is pending; the owner approves (or rejects) the request; the approved code runs once on the private
table and its output, the release, goes back to the researcher.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

EVENT_PREFIX = "@@workbench "
OWNER = {"email": "info@openmined.org", "password": "changethis"}
"""The default admin syft creates on an in-process datasite: the data owner here."""
RESEARCHER = {"name": "Researcher", "email": "researcher@openmined.org", "password": "workbench-review"}


def emit(event: str, **fields: Any) -> None:
    print(EVENT_PREFIX + json.dumps({"event": event, **fields}), flush=True)


def request_source(job: dict[str, Any]) -> str:
    """The code request the owner reviews in syft: the recipe's identity, and what running it releases (row counts)."""
    table = job["table"]
    return (
        f"def {job['function']}({table}):\n"
        f'    """Recipe {job["recipe_name"]!r}, hash {job["recipe_hash"]}, as reviewed by the owner of {job["party"]!r}\n'
        f"    (review digest {job['review_digest']}). The workbench runs the recipe; this code releases the pinned\n"
        '    hash and the number of rows it was approved over, nothing of the rows themselves."""\n'
        f"    return {{'recipe_hash': {job['recipe_hash']!r}, 'review_digest': {job['review_digest']!r}, 'rows': int(len({table}))}}\n"
    )


def load_function(source: str, name: str) -> Any:
    """syft reads a function's source with inspect, so the request is written to a module file and imported."""
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def main() -> None:
    job = json.loads(sys.stdin.readline())
    import pandas as pd
    import syft as sy

    datasite = sy.orchestra.launch(name=f"workbench-{job['party']}", reset=True)
    try:
        owner = datasite.login(**OWNER)
        dataset = sy.Dataset(name=job["table"], description=f"{job['party']}'s table {job['table']!r}, with mock rows of the same schema")
        dataset.add_asset(sy.Asset(name=job["table"], data=pd.read_parquet(job["private"]), mock=pd.read_parquet(job["mock"])))
        owner.upload_dataset(dataset)
        owner.register(**RESEARCHER, password_verify=RESEARCHER["password"])

        researcher = datasite.login(email=RESEARCHER["email"], password=RESEARCHER["password"])
        asset = researcher.datasets[0].assets[0]
        function = sy.syft_function_single_use(**{job["table"]: asset})(load_function(request_source(job), job["function"]))
        researcher.code.request_code_execution(function)
        try:
            getattr(researcher.code, job["function"])(**{job["table"]: asset})
            refused = ""
        except Exception as error:  # syft raises SyftException while the request is pending
            refused = str(error).strip()
        [request] = owner.requests.get_all()
        emit(
            "submitted",
            request_id=str(request.id),
            code_hash=request.code.code_hash,
            code=request.code.raw_code,
            requested_by=RESEARCHER["email"],
            status=request.status.name.lower(),
            refused_while_pending=refused,
        )

        decision = json.loads(sys.stdin.readline())
        if not decision.get("approve"):
            request.deny(reason=decision.get("reason") or "rejected by the data owner")
            emit("decided", status=owner.requests.get_all()[0].status.name.lower(), released=None)
            return
        request.approve()
        released = getattr(researcher.code, job["function"])(**{job["table"]: asset}).get()
        emit("decided", status=owner.requests.get_all()[0].status.name.lower(), released=released, datasite=datasite.name)
    except Exception as error:
        emit("error", message=f"{type(error).__name__}: {error}")
        raise SystemExit(1) from None
    finally:
        datasite.land()


if __name__ == "__main__":
    main()
