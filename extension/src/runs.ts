/** The runs list: past and running headless runs with status, progress, key metrics and the report link. */

import { formatNumber, h } from './dom';
import { IRunSummary } from './types';

const STATUS_LABELS: Record<IRunSummary['status'], string> = {
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  interrupted: 'interrupted'
};

export interface IRunActions {
  reportUrl(id: string): string;
  /** Cancel a running run; rejects with the server's message (e.g. a run this server did not start). */
  cancel(id: string): Promise<void>;
  /** Whether a cancel of that run is under way: the list is redrawn every second, the button must stay disabled. */
  isCancelling(id: string): boolean;
}

export function renderRuns(runs: IRunSummary[], actions: IRunActions): HTMLElement {
  if (!runs.length) {
    return h('p', { class: 'wb-empty' }, 'No runs yet. Press Run on a recipe.');
  }
  return h('ul', { class: 'wb-runs' }, ...groupBySweep(runs).map(group => (Array.isArray(group) ? renderSweep(group, actions) : renderRun(group, actions))));
}

/** Runs in the server's order (newest first), a sweep's runs gathered where its newest run is. */
function groupBySweep(runs: IRunSummary[]): (IRunSummary | IRunSummary[])[] {
  const groups: (IRunSummary | IRunSummary[])[] = [];
  const sweeps = new Map<string, IRunSummary[]>();
  for (const run of runs) {
    if (!run.sweep) {
      groups.push(run);
      continue;
    }
    let members = sweeps.get(run.sweep.id);
    if (!members) {
      members = [];
      sweeps.set(run.sweep.id, members);
      groups.push(members);
    }
    members.push(run);
  }
  return groups;
}

/** One sweep: its path and folder above its variants' runs, each labelled with its value. */
function renderSweep(runs: IRunSummary[], actions: IRunActions): HTMLElement {
  const sweep = runs[0].sweep!;
  const finished = runs.filter(run => run.status === 'finished').length;
  return h(
    'li',
    { class: 'wb-sweep', 'data-sweep': sweep.id },
    h('div', { class: 'wb-sweep-head', title: sweep.id }, `Sweep of ${sweep.path ?? sweep.id} · ${finished}/${runs.length} finished`),
    h('ul', { class: 'wb-runs wb-sweep-runs' }, ...runs.map(run => renderRun(run, actions)))
  );
}

function renderRun(run: IRunSummary, actions: IRunActions): HTMLElement {
  const progress = run.progress;
  const fraction = progress ? (progress.index + (progress.total ? progress.done / progress.total : 0)) / Math.max(progress.steps, 1) : 0;
  return h(
    'li',
    { class: `wb-run wb-run-${run.status}`, 'data-run': run.id },
    h(
      'div',
      { class: 'wb-run-head' },
      h('span', { class: `wb-status wb-status-${run.status}` }, STATUS_LABELS[run.status]),
      h('span', { class: 'wb-run-recipe' }, run.sweep ? run.sweep.label : run.recipe),
      h('span', { class: 'wb-run-time', title: run.id }, [startedAt(run.started), run.seconds !== null ? `${run.seconds.toFixed(1)} s` : ''].filter(Boolean).join(' · '))
    ),
    run.status === 'running'
      ? h(
          'div',
          { class: 'wb-run-progress' },
          h('progress', { max: '1', value: String(fraction) }),
          h('span', {}, progress ? `${progress.step} ${progress.done}/${progress.total} ${progress.label}` : 'starting…'),
          cancelButton(run, actions)
        )
      : null,
    run.error ? h('div', { class: 'wb-run-error' }, run.error) : null,
    run.metrics.length
      ? h(
          'dl',
          { class: 'wb-metrics', title: 'Mean over sites of the held-out AUC of each model' },
          ...run.metrics.flatMap(metric => [h('dt', {}, metric.label), h('dd', {}, formatNumber(metric.value))])
        )
      : null,
    run.report
      ? h('a', { class: 'wb-report-link', href: actions.reportUrl(run.id), target: '_blank', rel: 'noopener' }, 'Open report ↗')
      : null
  );
}

/** Stops the run; a failure (a run started elsewhere, or already over) shows in place of the button's label. */
function cancelButton(run: IRunSummary, actions: IRunActions): HTMLButtonElement {
  const title = 'Stop this run: its processes get SIGTERM, then SIGKILL';
  const cancelling = actions.isCancelling(run.id);
  const button = h('button', { class: 'jp-Button wb-action wb-cancel', title, disabled: cancelling }, cancelling ? 'Cancelling…' : 'Cancel');
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Cancelling…';
    try {
      await actions.cancel(run.id);
    } catch (error) {
      button.textContent = 'Cancel failed';
      button.title = String(error instanceof Error ? error.message : error);
      button.disabled = false;
    }
  });
  return button;
}

/** The time of day a run started, or its date if not today: runs are told apart by when, not by hash. */
function startedAt(iso: string): string {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) {
    return iso;
  }
  const today = new Date().toDateString() === when.toDateString();
  return today ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : when.toLocaleDateString();
}
