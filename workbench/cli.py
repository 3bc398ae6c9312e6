"""`workbench run | runs | validate | schema | export | data | keys | approve | audit`: a thin face over the runner.

Each command imports what it uses when it runs: `validate`, `schema` and `--help` must start in a moment, and the
runner, the report and the generator bring numpy, polars and matplotlib with them.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from workbench.governance.approvals import SyftEvidence
    from workbench.governance.review import PartyReview
    from workbench.recipe import Recipe
    from workbench.sweep import Variant

# A traceback that shows local variables would print whatever rows a party's table held at the time: never.
app = typer.Typer(
    help="PPML Workbench: privacy-preserving ML pipelines across parties that may not pool data.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
data_app = typer.Typer(help="Datasets: generate the synthetic cohort.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(data_app, name="data")
keys_app = typer.Typer(help="Data owners' signing keys.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Parties' audit trails of a run.", no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(audit_app, name="audit")
console = Console()
errors = Console(stderr=True)


def _load_or_exit(path: Path, overrides: list[str]) -> Recipe:
    from workbench.recipe import RecipeError, load_recipe

    try:
        return load_recipe(path, overrides)
    except RecipeError as error:
        for problem in error.problems:
            errors.print(problem.render(error.source), markup=False, highlight=False, soft_wrap=True)
        errors.print(f"[red]{len(error.problems)} problem(s) in {error.source}")
        raise typer.Exit(2) from None


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/NAME-HASH-TIME-RANDOM).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the recipe's seed.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a field, e.g. --set steps[1].params.l2=0.1")] = [],  # noqa: B006
    force: Annotated[bool, typer.Option(help="Write into a non-empty run directory.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on standard output (progress goes to standard error).")] = False,
    mock: Annotated[
        bool, typer.Option(help="Run on mock rows drawn from each source's declared schema; no real row is read and no approval is needed.")
    ] = False,
    approvals: Annotated[Path | None, typer.Option(help="Folder of the owners' keys and approvals (default: approvals/ beside the recipe).")] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            help="Run once per value of one field and compare: PATH=v1,v2,... with each value read as YAML (null for none), "
            "e.g. 'steps[local_train].params.model.l2=0.01,1'; one run directory a value under --out (default runs/NAME-sweep-TIME), "
            "and sweep.html."
        ),
    ] = None,
) -> None:
    """Run a recipe headless and write its run directory; print a line a step (full tables are in report.html)."""
    from workbench.console import ConsoleRenderer
    from workbench.runner import RunError, default_run_dir, run_recipe
    from workbench.summary import render_summary, run_summary

    overrides = [*set_, *([f"seed={seed}"] if seed is not None else [])]
    if sweep is not None:
        _sweep(recipe, sweep, out, overrides, force=force, json_=json_, mock=mock, approvals=approvals)
        return
    parsed = _load_or_exit(recipe, overrides)
    out = out or default_run_dir(parsed)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # what timeout, docker stop and systemd send: stop as Ctrl-C does
    try:
        with ConsoleRenderer(errors if json_ else console) as renderer:
            result = run_recipe(parsed, out, base_dir=recipe.parent, listeners=[renderer], force=force, mock=mock, approvals_dir=approvals)
    except KeyboardInterrupt:
        errors.print(f"[yellow]interrupted:[/] child processes stopped, private temporary files removed; {out} is marked interrupted", highlight=False)
        raise typer.Exit(130) from None
    except RunError as error:
        errors.print(f"[red]error:[/] {error}", highlight=False)
        if error.user_error:
            raise typer.Exit(2) from None
        errors.print(f"this is a bug; the stack is in {out / 'error.log'} (or above, if that could not be written)")
        raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = run_summary(parsed, result.metrics, result.manifest, result.ledger, str(out))
    if json_:
        print(json.dumps(summary, indent=2))
    else:
        render_summary(console, summary)


def _sweep(recipe: Path, text: str, out: Path | None, overrides: list[str], *, force: bool, json_: bool, mock: bool, approvals: Path | None) -> None:
    """`run --sweep`: every variant in turn, a line each as it ends; exit 2 when one failed (1 when of a bug), after all ran."""
    from rich.markup import escape

    from workbench.console import ConsoleRenderer
    from workbench.recipe import RecipeError
    from workbench.summary import run_summary, scoring_headline
    from workbench.sweep import Sweep, SweepError, run_sweep

    shown = errors if json_ else console

    live: list[ConsoleRenderer] = []

    def listeners(label: str) -> list[ConsoleRenderer]:
        """A variant's progress bars, stopped when it ends (`ended`), so each variant's bars stand above its line."""
        shown.print(f"[bold]{escape(label)}[/]", highlight=False)
        live.append(ConsoleRenderer(shown).__enter__())
        return live[-1:]

    def stop_bars() -> None:
        while live:
            live.pop().__exit__(None, None, None)

    def ended(variant: Variant) -> None:
        stop_bars()
        if variant.result is not None and variant.recipe is not None:
            result = variant.result
            line = scoring_headline(variant.recipe, run_summary(variant.recipe, result.metrics, result.manifest, result.ledger, str(result.out_dir)))
            shown.print(f"[green]{escape(variant.label)}[/]: {escape(line)}", highlight=False, soft_wrap=True)
        else:
            shown.print(f"[red]{escape(variant.label)}: {variant.status}:[/] {escape(variant.error or '')}", highlight=False, soft_wrap=True)

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        parsed = Sweep.parse(text)
        result = run_sweep(recipe, parsed, out, overrides=overrides, listeners=listeners, on_variant=ended, force=force, mock=mock, approvals_dir=approvals)
    except RecipeError as error:
        for problem in error.problems:
            errors.print(problem.render(error.source), markup=False, highlight=False, soft_wrap=True)
        errors.print(f"[red]{len(error.problems)} problem(s) in {error.source}")
        raise typer.Exit(2) from None
    except SweepError as error:
        errors.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted:[/] the sweep stopped; sweep.json records which variants ran", highlight=False)
        raise typer.Exit(130) from None
    finally:
        stop_bars()
        signal.signal(signal.SIGTERM, previous)
    if json_:
        print((result.out_dir / "sweep.json").read_text(), end="")
    failed = result.failed
    shown.print(
        f"sweep of {escape(parsed.path)}: {len(result.variants) - len(failed)} of {len(result.variants)} variants finished; "
        f"comparison in [bold]{escape(str(result.page))}[/]",
        highlight=False,
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(2 if all(v.user_error for v in failed) else 1)


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(help="The folder that holds run directories.")] = Path("runs"),
    json_: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """The runs in FOLDER, newest first: finished, failed, interrupted or running, and where (from events and status.json);
    a sweep's runs as SWEEP/LABEL."""
    from rich.table import Table

    from workbench.run_state import EVENTS_FILE, read_run, run_folders

    if not folder.is_dir():
        errors.print(f"[red]error:[/] {folder} is not a folder of runs; pass the folder `workbench run` wrote into", highlight=False)
        raise typer.Exit(2)
    found = sorted(((i, p) for i, p in run_folders(folder) if (p / EVENTS_FILE).is_file()), key=lambda f: (f[1] / EVENTS_FILE).stat().st_mtime, reverse=True)
    states = [(run_id, read_run(path)) for run_id, path in found]
    if json_:
        print(json.dumps([{"run": run_id, **state.model_dump(mode="json", exclude={"curves"})} for run_id, state in states], indent=2))
        return
    table = Table(box=None, pad_edge=False, padding=(0, 1))
    for column in ("run", "status", "step", "seconds"):
        table.add_column(column, no_wrap=column != "run", overflow="fold")
    for run_id, state in states:
        index, steps = state.position
        where = f"{state.current} ({index}/{steps})" if state.current else f"{steps}/{steps}" if state.status.value == "finished" else "—"
        table.add_row(run_id, state.status.value, where, "" if state.seconds is None else f"{state.seconds:.1f}")
    console.print(table if states else f"no runs in {folder}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def validate(recipes: Annotated[list[Path], typer.Argument(help="Recipe YAML files.")]) -> None:
    """Check recipes against the schema and their cross-references; name every problem by path and line."""
    from workbench.recipe import RecipeError, load_recipe

    failed = 0
    for path in recipes:
        try:
            load_recipe(path)
            console.print(f"[green]ok[/] {path}")
        except RecipeError as error:
            failed += 1
            for problem in error.problems:
                errors.print(problem.render(error.source), markup=False, highlight=False, soft_wrap=True)
    if failed:
        errors.print(f"[red]{failed} of {len(recipes)} recipe(s) have problems")
        raise typer.Exit(2)


@keys_app.command("new")
def keys_new(
    party: Annotated[str, typer.Option(help="The party whose owner this key is.")],
    key_dir: Annotated[Path, typer.Option(help="The owner's own folder for the private key (PARTY.key, readable by the owner only).")] = Path("owner-keys"),
    register: Annotated[Path, typer.Option(help="The approvals folder where the public key is registered (PARTY.pub).")] = Path("approvals"),
) -> None:
    """Make a data owner's Ed25519 signing key and register its public half."""
    from workbench.governance.signing import SigningError, fingerprint, new_key, read_public_key

    try:
        private, public = new_key(key_dir, register, party)
    except SigningError as error:
        errors.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"wrote {private} (keep it with the owner) and registered {public} (key {fingerprint(read_public_key(public))})", highlight=False)


@app.command()
def approve(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    party: Annotated[str, typer.Option(help="The party whose owner approves.")],
    key: Annotated[Path, typer.Option(help="The owner's private key (from `workbench keys new`).")],
    approvals: Annotated[Path | None, typer.Option(help="Approvals folder (default: approvals/ beside the recipe).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="The same overrides the run will use: they change the hash.")] = [],  # noqa: B006
    min_rows: Annotated[int, typer.Option(help="Release policy: publish summaries computed from at least this many of the party's rows.")] = 10,
    yes: Annotated[bool, typer.Option("--yes", help="Sign without asking (after printing the review).")] = False,
    via: Annotated[
        Literal["folder", "syft"], typer.Option(help="syft: submit the recipe to the party's PySyft datasite and approve it there first.")
    ] = "folder",
) -> None:
    """Show what the recipe does with the party's data (contracts and a dry run on mock rows), then sign its hash."""
    from workbench.errors import WorkbenchError
    from workbench.governance.approvals import APPROVALS_DIR, ReleasePolicy
    from workbench.governance.approvals import approve as sign_approval
    from workbench.governance.review import dry_run_review
    from workbench.runner import RunError

    parsed = _load_or_exit(recipe, set_)
    if party not in parsed.parties:
        errors.print(f"[red]error:[/] recipe {parsed.name!r} has no party {party!r}; its parties: {', '.join(parsed.parties)}", highlight=False)
        raise typer.Exit(2)
    console.print(f"dry run of {parsed.name} on mock rows, to see what leaves {party} ...", highlight=False)
    try:
        review = dry_run_review(parsed, party, recipe.parent)
    except RunError as error:
        errors.print(f"[red]error:[/] the dry run on mock rows failed, so there is nothing to review: {error}", highlight=False)
        raise typer.Exit(2) from None
    _print_review(review)
    question = f"Sign recipe {parsed.name} (hash {parsed.hash()[:12]}) as the owner of {party}?"
    try:
        syft = _approve_on_datasite(parsed, party, recipe.parent, review.digest(), question, yes) if via == "syft" else None
        if via == "folder" and not yes and not typer.confirm(question):
            raise typer.Exit(1)
        approval = sign_approval(
            approvals or recipe.parent / APPROVALS_DIR, party, parsed.name, parsed.hash(), review.digest(), key, ReleasePolicy(min_rows=min_rows), syft
        )
    except WorkbenchError as error:
        errors.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    through = f", through syft request {approval.syft.request_id}" if approval.syft else ""
    console.print(
        f"{party} approved {parsed.name} (hash {approval.recipe_hash[:12]}, key {approval.key}, review {approval.review_digest[:12]}{through})",
        highlight=False,
    )


def _approve_on_datasite(parsed: Recipe, party: str, base_dir: Path, review_digest: str, question: str, yes: bool) -> SyftEvidence:
    """The syft half of `approve --via syft`: the request as the datasite holds it, then the owner's decision there."""
    from workbench.governance.syft_bridge import PendingRequest, approve_through_syft
    from workbench.runner import party_table

    table, private = party_table(parsed, party, base_dir)
    mock = party_table(parsed, party, base_dir, mock=True)[1]

    def decide(request: PendingRequest) -> bool:
        console.print(
            f"syft request {request.request_id} from {request.requested_by} is {request.status} on {party}'s datasite "
            f"(code hash {request.code_hash[:12]}); while pending, syft refused to run it on the private table: "
            f"{request.refused_while_pending.splitlines()[0] if request.refused_while_pending else 'it did not refuse'}\n{request.code}",
            highlight=False,
        )
        return yes or typer.confirm(question)

    console.print(f"starting {party}'s syft datasite (about 20 s) ...", highlight=False)
    return approve_through_syft(party, parsed.name, parsed.hash(), review_digest, table, mock, private, decide)


def _print_review(review: PartyReview) -> None:
    from rich.table import Table

    table = Table(title=f"What {review.recipe_name} does with {review.party}'s data", show_lines=True)
    for column in ("step", "reads", "sends (to whom, what, protection)", "on mock rows"):
        table.add_column(column)
    for step in review.steps:
        reads = (
            "\n".join(f"{table_name}: {', '.join(columns) or 'its columns as named by the step'}" for table_name, columns in step.reads.items()) or "no table"
        )
        sends = "\n".join(f"{f.receiver}: {f.kind}, {f.protection}" + (" [bold red]ROW-LEVEL[/]" if f.row_level else "") for f in step.sends) or "nothing"
        sizes = "\n".join(f"{f.messages} msg, {f.bytes_on_mock:,} B" for f in step.sends)
        table.add_row(f"{step.step} ({step.kind})", reads, sends, sizes)
    console.print(table)
    row_level = review.row_level_flows
    console.print(
        f"[bold]{len(row_level)} row-level flow(s) leave {review.party}[/]: "
        + "; ".join(f"{step} → {f.receiver} ({f.kind}, {f.protection})" for step, f in row_level)
        if row_level
        else f"No row-level data leaves {review.party}."
    )


@audit_app.command("verify")
def audit_verify(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    approvals: Annotated[Path | None, typer.Option(help="Approvals folder, to check the owners' signatures too.")] = None,
) -> None:
    """Check every party's hash-chained audit trail against the run's manifest, ledger and metrics."""
    from workbench.errors import WorkbenchError
    from workbench.governance.verify import verify_run

    try:
        problems, checked = verify_run(run_dir, approvals)
    except (OSError, ValueError, KeyError, WorkbenchError) as error:
        errors.print(f"[red]error:[/] {run_dir} cannot be verified: {error}", highlight=False)
        raise typer.Exit(2) from None
    for problem in problems:
        errors.print(f"[red]{problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"{run_dir}: every trail verifies ({checked} entries)", highlight=False)


@app.command()
def schema(out: Annotated[Path | None, typer.Option(help="Write to this file instead of standard output.")] = None) -> None:
    """Print the recipe JSON Schema, for editors to complete and check recipes."""
    from workbench.recipe import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out:
        out.write_text(text + "\n")
    else:
        print(text)


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option(help="Folder for one Parquet file per party, ground truth apart.")] = Path("cohort"),
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    id_noise: Annotated[float | None, typer.Option(help="Share of linked people whose identifiers differ between sides.")] = None,
    vendor_only_people: Annotated[int | None, typer.Option(help="Vendor customers who are no hospital's patients.")] = None,
) -> None:
    """Generate the synthetic surgical cohort (hospitals' EHR tables and the vendor's vitals)."""
    from workbench.data.cohort import CohortParams, generate_cohort, save_cohort

    given = {"id_noise": id_noise, "vendor_only_people": vendor_only_people}
    params = CohortParams(**{key: value for key, value in given.items() if value is not None})
    cohort = generate_cohort(params, seed)
    for path in save_cohort(cohort, out):
        console.print(f"wrote {path}")
    for name, frame in cohort.parts.items():
        console.print(f"  {name}: {frame.height} rows")


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="A recipe (.yaml) to turn into a notebook, or a workbench notebook (.ipynb) to turn back into a recipe.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="The notebook (.ipynb) or recipe (.yaml) to write.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file (never the input itself).")] = False,
) -> None:
    """Recipe -> notebook (one section per step, papermill parameters) or notebook -> recipe (same hash)."""
    from workbench.notebook import NotebookError, read_notebook_recipe, write_recipe_notebook
    from workbench.recipe import RecipeError

    if out.resolve() == source.resolve():
        errors.print(f"[red]error:[/] {out} is the file being exported; write the export elsewhere", highlight=False)
        raise typer.Exit(2)
    if out.exists() and not force:
        errors.print(f"[red]error:[/] {out} exists; choose another --out or pass --force to overwrite it", highlight=False)
        raise typer.Exit(2)

    if source.suffix == ".ipynb":
        try:
            recipe = read_notebook_recipe(source)
        except NotebookError as error:
            errors.print(f"[red]error:[/] {error}", highlight=False)
            raise typer.Exit(2) from None
        except RecipeError as error:
            for problem in error.problems:
                errors.print(problem.render(error.source), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        out.write_text(recipe.to_yaml(), encoding="utf-8")
    else:
        recipe = _load_or_exit(source, [])
        write_recipe_notebook(recipe, source, out)
    console.print(f"wrote {out} (recipe {recipe.name}, hash {recipe.hash()[:12]})")
