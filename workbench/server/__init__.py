"""The jupyter_server extension behind the PPML Workbench sidebar.

Enabled by etc/jupyter/jupyter_server_config.d/ppml_workbench.json, which the
wheel installs; it serves the endpoints in `handlers` from the workspace the
Jupyter server was started in. The workbench itself (polars, scikit-learn,
...) is imported only when the server loads the extension, so listing
extensions stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "workbench.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from workbench.server.handlers import handlers
    from workbench.server.limits import WorkbenchLimits
    from workbench.server.runs import RunManager
    from workbench.server.workspace import Workspace

    limits = WorkbenchLimits(parent=serverapp)  # c.WorkbenchLimits.* from the server's config files and command line
    workspace = Workspace(Path(serverapp.root_dir), max_recipe_bytes=limits.max_recipe_bytes)
    runs = RunManager(workspace, limits)
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"], workspace, runs))
    serverapp.log.info("PPML Workbench: recipes from %s and the workspace %s", workspace.package_dir, workspace.root)
    serverapp.log.info(
        "PPML Workbench: at most %s runs at once, %g GiB and %s CPU s each, datasets up to %s rows, recipes up to %s bytes "
        "(0: no limit; see c.WorkbenchLimits)",
        limits.max_concurrent_runs,
        limits.memory_limit_gib,
        limits.cpu_time_limit_s,
        limits.max_dataset_rows,
        limits.max_recipe_bytes,
    )
