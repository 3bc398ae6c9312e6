/** The "PPML Workbench" sidebar: the recipe gallery above, the runs list below. */

import { Widget } from '@lumino/widgets';

import { api } from './api';
import { h } from './dom';
import { IGalleryActions, renderGallery } from './gallery';
import { IRunActions, renderRuns } from './runs';
import { IRecipeCard } from './types';

const POLL_MS = 1000;

export class WorkbenchPanel extends Widget {
  constructor(private readonly openNotebook: (path: string) => Promise<void>) {
    super();
    this.id = 'ppml-workbench-panel';
    this.addClass('wb-panel');
    this.title.caption = 'PPML Workbench';
    this.node.append(
      h(
        'header',
        { class: 'wb-panel-head' },
        h('h2', {}, 'PPML Workbench'),
        h('button', { class: 'jp-Button wb-refresh', title: 'Reload recipes and runs', onclick: () => void this.refresh() }, '⟳')
      ),
      h('h3', { class: 'wb-section' }, 'Recipes'),
      this.galleryNode,
      this.runsHeading,
      this.runsNode
    );
  }

  /** Reload the gallery and the runs list from the server. */
  async refresh(): Promise<void> {
    await Promise.all([this.loadRecipes(), this.loadRuns()]);
  }

  protected onAfterAttach(): void {
    void this.refresh();
  }

  protected onBeforeDetach(): void {
    this.stopPolling();
  }

  private async loadRecipes(): Promise<void> {
    try {
      this.galleryNode.replaceChildren(renderGallery(await api.recipes(), this.actions));
    } catch (error) {
      this.galleryNode.replaceChildren(h('p', { class: 'wb-error' }, String(error)));
    }
  }

  private async loadRuns(): Promise<void> {
    try {
      const runs = await api.runs();
      this.runsNode.replaceChildren(renderRuns(runs, this.runActions));
      if (runs.some(run => run.status === 'running')) {
        this.startPolling();
      } else {
        this.stopPolling();
      }
    } catch (error) {
      this.runsNode.replaceChildren(h('p', { class: 'wb-error' }, String(error)));
      this.stopPolling();
    }
  }

  private startPolling(): void {
    if (this.timer === null) {
      this.timer = window.setInterval(() => void this.loadRuns(), POLL_MS);
    }
  }

  private stopPolling(): void {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
  }

  private readonly actions: IGalleryActions = {
    openNotebook: async (card: IRecipeCard) => {
      const { path } = await api.newNotebook(card.ref);
      await this.openNotebook(path);
    },
    run: async (card: IRecipeCard) => {
      await api.startRun(card.ref);
      await this.loadRuns();
      this.runsHeading.scrollIntoView({ behavior: 'smooth', block: 'start' });
    },
    validate: async (card: IRecipeCard) => (await api.validate(card.ref)).problems,
    review: (card: IRecipeCard, party: string) => api.review(card.ref, party),
    approve: (card: IRecipeCard, party: string, key: string, digest: string, minRows: number) =>
      api.approve(card.ref, party, key, digest, minRows)
  };

  private readonly cancelling = new Set<string>();
  private readonly runActions: IRunActions = {
    reportUrl: api.reportUrl,
    cancel: async (id: string) => {
      this.cancelling.add(id);
      try {
        await api.cancelRun(id);
      } finally {
        this.cancelling.delete(id);
      }
      await this.loadRuns();
    },
    isCancelling: (id: string) => this.cancelling.has(id)
  };

  private readonly galleryNode = h('div', { class: 'wb-gallery-host' }, h('p', { class: 'wb-empty' }, 'Loading recipes…'));
  private readonly runsNode = h('div', { class: 'wb-runs-host' });
  private readonly runsHeading = h('h3', { class: 'wb-section' }, 'Runs');
  private timer: number | null = null;
}
