/**
 * The owner's approval inside a recipe card: review what the recipe does with one party's data, then sign it.
 *
 * The same review and signature as `workbench approve`: the form shows the dry run's steps, columns and flows (row-level
 * ones first and marked), and the signature carries the digest of the review shown, so a recipe edited in between is
 * refused by the server rather than signed unseen.
 */

import { h, whileBusy } from './dom';
import { IPartyReview, IRecipeCard, IReviewFlow, ISignedApproval } from './types';

export interface IApproveActions {
  review(card: IRecipeCard, party: string): Promise<IPartyReview>;
  approve(card: IRecipeCard, party: string, key: string, digest: string, minRows: number): Promise<ISignedApproval>;
}

const DEFAULT_MIN_ROWS = 10;

/** The parties of the card whose owners sign it (those holding data, when the recipe requires approvals). */
export function approvingParties(card: IRecipeCard): string[] {
  return card.approvals === 'required' ? card.parties.filter(party => party.approval !== null).map(party => party.name) : [];
}

/** The form; `onApproved` is told each party signed, so the card can show its new state without a reload. */
export function renderApproval(card: IRecipeCard, actions: IApproveActions, onApproved: (party: string) => void): HTMLElement {
  const parties = approvingParties(card);
  const firstNeeded = card.parties.find(party => party.approval === 'needed')?.name ?? parties[0];
  const partySelect = h('select', { class: 'wb-approve-party', 'aria-label': 'Party' }, ...parties.map(name => h('option', { value: name }, name)));
  partySelect.value = firstNeeded;
  const keyInput = h('input', { class: 'wb-approve-key', type: 'text', 'aria-label': "Owner's private key (workspace path)" });
  const minRows = h('input', { class: 'wb-approve-min-rows', type: 'number', min: '1', value: String(DEFAULT_MIN_ROWS), 'aria-label': 'Release policy: at least this many rows' });
  const reviewNode = h('div', { class: 'wb-review-host' });
  const status = h('div', { class: 'wb-approve-status', role: 'status' });
  const sign = h('button', { class: 'jp-Button wb-action wb-sign', disabled: true }, 'Sign');
  let shown: IPartyReview | null = null;

  // Where `workbench keys new` puts the key when run beside the recipe; the owner types another workspace path if not.
  const folder = card.path.includes('/') ? card.path.slice(0, card.path.lastIndexOf('/') + 1) : '';
  const defaultKey = (): void => {
    keyInput.value = `${folder}owner-keys/${partySelect.value}.key`;
  };
  defaultKey();
  const forget = (): void => {
    shown = null;
    sign.disabled = true;
    reviewNode.replaceChildren();
    status.replaceChildren();
  };
  partySelect.addEventListener('change', () => {
    defaultKey();
    forget();
  });

  const attempt = (button: HTMLButtonElement, work: () => Promise<void>) =>
    whileBusy(
      button,
      status,
      'wb-approve-status wb-invalid',
      async () => {
        status.className = 'wb-approve-status';
        await work();
      },
      () => button !== sign || shown !== null
    );
  const reviewButton = h('button', { class: 'jp-Button wb-action wb-review-button' }, 'Review');
  reviewButton.addEventListener(
    'click',
    attempt(reviewButton, async () => {
      forget();
      status.replaceChildren('Dry run on mock rows…');
      shown = await actions.review(card, partySelect.value);
      reviewNode.replaceChildren(renderReview(shown));
      status.replaceChildren(`Review ${shown.digest.slice(0, 12)} of hash ${shown.recipe_hash.slice(0, 12)}: sign it as the owner of ${shown.party}?`);
      sign.disabled = false;
    })
  );
  sign.addEventListener(
    'click',
    attempt(sign, async () => {
      if (shown === null) {
        return;
      }
      const rows = Number(minRows.value);
      if (!Number.isInteger(rows) || rows < 1) {
        throw new Error('release policy: at least how many rows? Give a whole number of 1 or more');
      }
      const signed = await actions.approve(card, shown.party, keyInput.value, shown.digest, rows);
      shown = null;
      status.className = 'wb-approve-status wb-valid';
      status.replaceChildren(`✓ ${signed.party} approved ${signed.recipe} (hash ${signed.hash.slice(0, 12)}) with key ${signed.key.slice(0, 16)}`);
      onApproved(signed.party);
    })
  );

  return h(
    'div',
    { class: 'wb-approve' },
    h('label', {}, 'Party ', partySelect),
    h('label', {}, 'Key ', keyInput),
    h('label', { title: 'Summaries the party publishes must come from at least this many of its rows' }, 'Min rows ', minRows),
    h('div', { class: 'wb-actions' }, reviewButton, sign),
    reviewNode,
    status
  );
}

/** The review as a table: one row per step, its columns read and what it sends (row-level flows first, marked). */
function renderReview(review: IPartyReview): HTMLElement {
  const rows = review.steps.map(step =>
    h(
      'tr',
      { class: step.sends.some(flow => flow.row_level) ? 'wb-review-step wb-row-level' : 'wb-review-step', 'data-step': step.step },
      h('td', {}, step.step),
      h('td', {}, Object.entries(step.reads).map(([table, columns]) => `${table}: ${columns.join(', ')}`).join('; ') || '—'),
      h('td', {}, ...(step.sends.length ? [...step.sends].sort((a, b) => Number(b.row_level) - Number(a.row_level)).map(renderFlow) : ['—']))
    )
  );
  const headline = review.row_level
    ? `${review.row_level} row-level flow(s) leave ${review.party}`
    : `no row-level data leaves ${review.party}`;
  return h(
    'div',
    { class: 'wb-review' },
    h('p', { class: review.row_level ? 'wb-review-headline wb-row-level' : 'wb-review-headline' }, headline),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Step'), h('th', {}, 'Reads'), h('th', {}, 'Sends'))),
      h('tbody', {}, ...rows)
    )
  );
}

function renderFlow(flow: IReviewFlow): HTMLElement {
  return h(
    'div',
    { class: flow.row_level ? 'wb-flow wb-row-level' : 'wb-flow', title: `${flow.messages} message(s), ${flow.bytes_on_mock} bytes on mock rows` },
    `${flow.row_level ? '⚠ rows ' : ''}${flow.kind} → ${flow.receiver} (${flow.protection})`
  );
}
