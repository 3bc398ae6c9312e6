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
  /** 'approved' when a valid approval for the recipe's exact hash is filed, 'needed' when not; null when the party holds no data or the recipe needs no approvals. */
  approval: 'approved' | 'needed' | null;
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
  /** 'required' (the default): every party holding data signs the exact recipe before its store opens. */
  approvals: 'required' | 'not_required';
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

/** One kind of message a step sends from the party, as the dry run on mock rows recorded it. */
export interface IReviewFlow {
  receiver: string;
  kind: string;
  protection: string;
  row_level: boolean;
  messages: number;
  bytes_on_mock: number;
}

export interface IStepReview {
  step: string;
  kind: string;
  /** Table -> the columns the step's contract declares it reads at the party. */
  reads: Record<string, string[]>;
  sends: IReviewFlow[];
}

/** What a recipe does with one party's data: what its owner signs (workbench/governance/review.py). */
export interface IPartyReview {
  party: string;
  recipe_name: string;
  recipe_hash: string;
  steps: IStepReview[];
  /** The digest of this review: a sign request carries it, so a recipe changed since is refused. */
  digest: string;
  row_level: number;
}

export interface ISignedApproval {
  party: string;
  recipe: string;
  hash: string;
  /** Fingerprint of the owner's public key. */
  key: string;
  signed_at: string;
}
