/** Calls to the workbench's jupyter_server endpoints, authenticated like every other Lab request. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IPartyReview, IRecipeCard, IRunSummary, ISignedApproval, IValidation } from './types';

const API = 'ppml-workbench/api';

/** Thrown with the server's own message (it names the file or field at fault). */
export class WorkbenchError extends Error {}

async function request<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API, endpoint);
  let response: Response;
  try {
    // makeRequest adds the token header and the XSRF cookie value the server checks.
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new WorkbenchError(`cannot reach the workbench server extension: ${error}`);
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new WorkbenchError(body.message ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

function post<T>(endpoint: string, payload: unknown): Promise<T> {
  return request<T>(endpoint, { method: 'POST', body: JSON.stringify(payload) });
}

export const api = {
  recipes: async (): Promise<IRecipeCard[]> => (await request<{ recipes: IRecipeCard[] }>('recipes')).recipes,
  validate: (ref: string): Promise<IValidation> => post('recipes/validate', { ref }),
  newNotebook: (ref: string): Promise<{ path: string }> => post('notebooks', { ref }),
  exportNotebook: (path: string): Promise<{ path: string; hash: string }> => post('export', { path }),
  /** A dry run on mock rows (seconds): what the recipe does with `party`'s data. */
  review: (ref: string, party: string): Promise<IPartyReview> => post('approvals/review', { ref, party }),
  /** Signs the reviewed recipe with the owner's key (a workspace path); refused if the review changed since `digest`. */
  approve: (ref: string, party: string, key: string, digest: string, minRows: number): Promise<ISignedApproval> =>
    post('approvals', { ref, party, key, digest, min_rows: minRows }),
  runs: async (): Promise<IRunSummary[]> => (await request<{ runs: IRunSummary[] }>('runs')).runs,
  startRun: (ref: string): Promise<IRunSummary> => post('runs', { ref }),
  /** Stops a run this server started (SIGTERM, then SIGKILL); resolves with its summary once its processes are gone. */
  cancelRun: (id: string): Promise<IRunSummary> => request(`runs/${encodeURIComponent(id)}`, { method: 'DELETE' }),
  reportUrl: (id: string): string =>
    URLExt.join(ServerConnection.makeSettings().baseUrl, API, 'runs', encodeURIComponent(id), 'report')
};
