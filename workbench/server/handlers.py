"""The REST endpoints the sidebar calls, all behind Jupyter's authentication and XSRF checks.

Every handler derives from jupyter_server's APIHandler (token or cookie login,
XSRF on POST and DELETE, JSON errors) and every method is `@tornado.web.authenticated`:
there is no route here a request without credentials reaches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from workbench.governance.approvals import ReleasePolicy
from workbench.notebook import NotebookError, read_notebook_recipe, recipe_to_notebook
from workbench.recipe import RecipeError
from workbench.server import approvals
from workbench.server.cards import recipe_card, validate
from workbench.server.runs import RunManager, RunRefused
from workbench.server.workspace import RecipeFile, Workspace, WorkspaceError

API = "ppml-workbench/api"


class WorkbenchHandler(APIHandler):
    def initialize(self, workspace: Workspace, runs: RunManager) -> None:
        self.workspace, self.runs = workspace, runs

    def body(self, *fields: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError as error:
            raise tornado.web.HTTPError(400, f"request body is not JSON: {error}") from None
        missing = [f for f in fields if not isinstance(data.get(f), str)]
        if missing:
            raise tornado.web.HTTPError(400, f"request body needs string field(s): {', '.join(missing)}")
        return data

    async def off_loop(self, ref: str, work: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """Run `work` (a dry run takes seconds) in a worker thread, with its refusals as 400s naming what to fix."""
        try:
            return await IOLoop.current().run_in_executor(None, work, *args)
        except RecipeError as error:
            raise tornado.web.HTTPError(400, "\n".join(p.render(ref) for p in error.problems)) from None
        except (approvals.ApprovalRefused, WorkspaceError) as error:
            raise tornado.web.HTTPError(400, str(error)) from None

    def recipe_file(self, ref: str) -> RecipeFile:
        try:
            return self.workspace.recipe(ref)
        except WorkspaceError as error:
            raise tornado.web.HTTPError(404, str(error)) from None


class RecipesHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish({"recipes": [recipe_card(self.workspace, file) for file in self.workspace.recipes()]})


class ValidateHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        problems = validate(self.workspace, self.recipe_file(self.body("ref")["ref"]))
        self.finish({"ok": not problems, "problems": problems})


class NotebooksHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        """Write the recipe's notebook: beside a workspace recipe, at the workspace root for a package one."""
        ref = self.body("ref")["ref"]
        file = self.recipe_file(ref).file
        try:
            recipe = self.workspace.load(file)
        except RecipeError as error:
            raise tornado.web.HTTPError(400, f"{ref} has problems; validate it first: {error.problems[0].render(ref)}") from None
        folder = file.parent if ref.startswith("workspace/") else self.workspace.root
        try:
            out = self.workspace.free_path(folder, file.name.removesuffix(".yaml").removesuffix(".recipe"), ".ipynb")
            # as write_recipe_notebook does, but written through the workspace, which follows no link
            notebook = recipe_to_notebook(recipe, base_dir=Path(os.path.relpath(file.parent.resolve(), out.parent)).as_posix(), source=str(file))
            self.workspace.write_text(out, nbformat.writes(notebook) + "\n", new=True)
        except WorkspaceError as error:
            raise tornado.web.HTTPError(400, str(error)) from None
        self.finish({"path": self.workspace.relative(out)})


class ExportHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        """Read the recipe back from a workbench notebook and write it as NAME.recipe.yaml beside it."""
        path = self.body("path")["path"]
        try:
            notebook = self.workspace.path(path)
            recipe = read_notebook_recipe(notebook)
            out = self.workspace.write_text(notebook.with_name(f"{notebook.stem}.recipe.yaml"), recipe.to_yaml())
        except (WorkspaceError, NotebookError) as error:
            raise tornado.web.HTTPError(400, str(error)) from None
        except RecipeError as error:
            raise tornado.web.HTTPError(400, "\n".join(p.render(path) for p in error.problems)) from None
        self.finish({"path": self.workspace.relative(out), "hash": recipe.hash()})


class ReviewHandler(WorkbenchHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        """What the recipe does with one party's data, from a dry run on mock rows: what its owner signs."""
        data = self.body("ref", "party")
        file = self.recipe_file(data["ref"])
        self.finish(await self.off_loop(data["ref"], approvals.review, self.workspace, file, data["party"]))


class ApprovalsHandler(WorkbenchHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        """Sign the reviewed recipe as the owner of a party (the digest says which review was shown)."""
        data = self.body("ref", "party", "key", "digest")
        min_rows = data.get("min_rows", ReleasePolicy().min_rows)
        if not isinstance(min_rows, int) or isinstance(min_rows, bool):
            raise tornado.web.HTTPError(400, "min_rows must be a whole number of rows")
        file = self.recipe_file(data["ref"])
        signed = await self.off_loop(data["ref"], approvals.sign, self.workspace, file, data["party"], data["key"], data["digest"], min_rows)
        self.set_status(201)
        self.finish(signed)


class RunsHandler(WorkbenchHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        """Off the loop: a server's first listing folds every run's events once (seconds with hundreds of big runs)."""
        self.finish({"runs": await IOLoop.current().run_in_executor(None, self.runs.summaries)})

    @tornado.web.authenticated
    async def post(self) -> None:
        """Off the loop: parsing the recipe, checking its budgets and starting Python take a second or more."""
        ref = self.body("ref")["ref"]
        recipe = self.recipe_file(ref)
        try:
            run_id = await IOLoop.current().run_in_executor(None, self.runs.start, recipe)
        except WorkspaceError as error:
            raise tornado.web.HTTPError(400, str(error)) from None
        except RecipeError as error:
            raise tornado.web.HTTPError(400, "\n".join(p.render(ref) for p in error.problems)) from None
        except RunRefused as error:
            raise tornado.web.HTTPError(error.status, str(error)) from None
        self.set_status(201)
        self.finish(self.runs.summary(run_id))


class RunHandler(WorkbenchHandler):
    @tornado.web.authenticated
    async def delete(self, run_id: str) -> None:
        """Cancel a run this server started; answers once its processes are gone, with its summary (status interrupted)."""
        try:
            await IOLoop.current().run_in_executor(None, self.runs.cancel, run_id)
        except RunRefused as error:
            raise tornado.web.HTTPError(error.status, str(error)) from None
        self.finish(self.runs.summary(run_id))


class ReportHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def get(self, run_id: str) -> None:
        """The run's self-contained report.html, opened in a new browser tab from the runs list."""
        try:
            report = self.workspace.inside(self.runs.run_dir(run_id) / "report.html", f"{run_id}/report.html")
        except (FileNotFoundError, WorkspaceError) as error:
            raise tornado.web.HTTPError(404, str(error)) from None
        if not report.is_file():
            raise tornado.web.HTTPError(404, f"run {run_id!r} has no report yet")
        self.finish(report.read_bytes(), set_content_type="text/html; charset=UTF-8")

    @property
    def content_security_policy(self) -> str:
        """The report is self-contained: inline styles and data-URI figures, no scripts, nothing fetched."""
        return "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def handlers(base_url: str, workspace: Workspace, runs: RunManager) -> list[tuple[str, type, dict[str, Any]]]:
    kwargs = {"workspace": workspace, "runs": runs}
    routes = [
        ("recipes", RecipesHandler),
        ("recipes/validate", ValidateHandler),
        ("notebooks", NotebooksHandler),
        ("export", ExportHandler),
        ("approvals/review", ReviewHandler),
        ("approvals", ApprovalsHandler),
        ("runs", RunsHandler),
        (r"runs/([^/]+)", RunHandler),
        (r"runs/([^/]+)/report", ReportHandler),
    ]
    return [(url_path_join(base_url, API, route), handler, kwargs) for route, handler in routes]
