/** The recipe gallery: one card per recipe with its parties, its chain of steps and its actions. */

import { approvingParties, IApproveActions, renderApproval } from './approve';
import { h, whileBusy } from './dom';
import { IPartyCard, IProblem, IRecipeCard } from './types';

export interface IGalleryActions extends IApproveActions {
  openNotebook(card: IRecipeCard): Promise<void>;
  run(card: IRecipeCard): Promise<void>;
  validate(card: IRecipeCard): Promise<IProblem[]>;
}

export function renderGallery(cards: IRecipeCard[], actions: IGalleryActions): HTMLElement {
  if (!cards.length) {
    return h('p', { class: 'wb-empty' }, 'No recipes found. Add a *.recipe.yaml file to the workspace.');
  }
  return h('div', { class: 'wb-gallery' }, ...cards.map(card => renderCard(card, actions)));
}

function renderCard(card: IRecipeCard, actions: IGalleryActions): HTMLElement {
  const status = h('div', { class: 'wb-card-status', role: 'status' });
  const steps = h('ol', { class: 'wb-chain' });
  const showProblems = (problems: IProblem[]): void => {
    status.replaceChildren();
    steps.replaceChildren(...card.steps.map(step => renderStep(card, step.index, problems)));
    const general = problems.filter(problem => problem.step === null);
    status.className = `wb-card-status ${problems.length ? 'wb-invalid' : 'wb-valid'}`;
    status.append(problems.length ? `${problems.length} problem(s)` : '✓ valid');
    if (general.length) {
      status.append(h('ul', { class: 'wb-problems' }, ...general.map(renderProblem)));
    }
  };
  showProblems(card.problems);
  if (!card.problems.length) {
    status.replaceChildren();
    status.className = 'wb-card-status';
  }

  const button = (label: string, title: string, work: () => Promise<void>, cls: string): HTMLButtonElement => {
    const element = h('button', { class: `jp-Button wb-action ${cls}`, title }, label);
    element.addEventListener('click', whileBusy(element, status, 'wb-card-status wb-invalid', work));
    return element;
  };

  const partiesNode = h('div', { class: 'wb-parties' }, ...card.parties.map(renderParty));
  const showApproved = (name: string): void => {
    const party = card.parties.find(p => p.name === name);
    const chip = Array.from(partiesNode.children).find(node => (node as HTMLElement).dataset.party === name);
    if (party && chip) {
      chip.replaceWith(renderParty({ ...party, approval: 'approved' }));
    }
  };
  const approval = h('div', { class: 'wb-approval-host' });
  const approveButton = approvingParties(card).length
    ? button('Approve…', "Review what the recipe does with a party's data and sign it as its owner", async () => {
        approval.replaceChildren(...(approval.childElementCount ? [] : [renderApproval(card, actions, showApproved)]));
      }, 'wb-approve-button')
    : null;

  return h(
    'section',
    { class: 'wb-card', 'data-recipe': card.name, 'data-ref': card.ref },
    h(
      'header',
      { class: 'wb-card-head' },
      h('span', { class: 'wb-card-name' }, card.name),
      h('span', { class: `wb-badge wb-source-${card.source}`, title: card.path }, card.source)
    ),
    card.description ? h('p', { class: 'wb-card-description' }, card.description) : null,
    partiesNode,
    steps,
    status,
    approval,
    h(
      'div',
      { class: 'wb-actions' },
      button('Open as notebook', 'Write a notebook with one section per step and open it', () => actions.openNotebook(card), 'wb-open'),
      button('Run', 'Run headless in the background; progress appears under Runs', () => actions.run(card), 'wb-run'),
      button('Validate', 'Check the recipe; problems appear against their step', async () => showProblems(await actions.validate(card)), 'wb-validate'),
      approveButton
    )
  );
}

function renderParty(party: IPartyCard): HTMLElement {
  const approval = party.approval ? ` · ${party.approval === 'approved' ? 'approved by its owner' : "needs its owner's approval"}` : '';
  return h(
    'span',
    {
      class: `wb-party wb-role-${party.role}${party.approval ? ` wb-approval-${party.approval}` : ''}`,
      title: `${party.description || party.role}${approval}`,
      'data-party': party.name
    },
    party.approval === 'approved' ? `✓ ${party.name}` : party.name
  );
}

function renderStep(card: IRecipeCard, index: number, problems: IProblem[]): HTMLElement {
  const step = card.steps[index];
  const own = problems.filter(problem => problem.step === index);
  return h(
    'li',
    { class: `wb-step${own.length ? ' wb-step-invalid' : ''}`, 'data-step': step.name },
    h('span', { class: 'wb-step-kind' }, step.kind),
    step.name !== step.kind ? h('span', { class: 'wb-step-name' }, step.name) : null,
    h('span', { class: 'wb-step-at', title: step.summary }, step.at.length ? `at ${step.at.join(', ')}` : ''),
    own.length ? h('ul', { class: 'wb-problems' }, ...own.map(renderProblem)) : null
  );
}

function renderProblem(problem: IProblem): HTMLElement {
  const where = [problem.line ? `line ${problem.line}` : '', problem.path].filter(Boolean).join(' · ');
  return h('li', { class: 'wb-problem' }, where ? h('code', {}, where) : null, ` ${problem.message}`);
}
