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
}
