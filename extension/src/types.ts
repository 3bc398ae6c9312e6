/** Shapes of the JSON the workbench server extension returns (workbench/server/handlers.py). */

export interface IProblem {
  path: string;
  message: string;
  line: number | null;
  /** Index of the step the problem belongs to, or null when it concerns the recipe as a whole. */
  step: number | null;
}

export interface IPartyCard {
  name: string;
  role: string;
  description: string;
}

export interface IStepCard {
  index: number;
  name: string;
  kind: string;
  at: string[];
  summary: string;
}

export interface IRecipeCard {
  ref: string;
  source: 'package' | 'workspace';
  path: string;
  name: string;
  description: string;
  parties: IPartyCard[];
  steps: IStepCard[];
  problems: IProblem[];
}

export interface IValidation {
  ok: boolean;
  problems: IProblem[];
}

export interface IKeyMetric {
  label: string;
  value: number;
}

export interface IRunProgress {
  step: string;
  index: number;
  steps: number;
  done: number;
  total: number;
  label: string;
}

/** The sweep a run belongs to (`workbench run --sweep`): runs of one sweep are shown as one group. */
export interface IRunSweep {
  /** The sweep's folder in runs/. */
  id: string;
  /** The variant, e.g. `epsilon=0.5`. */
  label: string;
  /** The swept path as given, e.g. `steps[fl_dp].params.epsilon`; null while sweep.json cannot be read. */
  path: string | null;
}

export interface IRunSummary {
  id: string;
  recipe: string;
  status: 'running' | 'finished' | 'failed' | 'interrupted';
  started: string;
  seconds: number | null;
  progress: IRunProgress | null;
  error: string | null;
  metrics: IKeyMetric[];
  report: boolean;
  sweep: IRunSweep | null;
}
