/** Palette and launcher commands: a new notebook from a recipe, and the current notebook back to a recipe. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ICommandPalette, InputDialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { api } from './api';

export const CommandIds = {
  newNotebook: 'ppml-workbench:new-notebook-from-recipe',
  exportNotebook: 'ppml-workbench:export-notebook-to-recipe',
  showPanel: 'ppml-workbench:show-panel'
};

const CATEGORY = 'PPML Workbench';

export function openPath(app: JupyterFrontEnd, path: string): Promise<void> {
  return app.commands.execute('docmanager:open', { path }) as Promise<void>;
}

export function registerCommands(
  app: JupyterFrontEnd,
  icon: LabIcon,
  notebooks: INotebookTracker,
  palette: ICommandPalette | null,
  launcher: ILauncher | null
): void {
  app.commands.addCommand(CommandIds.newNotebook, {
    label: args => (args.isLauncher ? 'Notebook from a recipe' : 'New notebook from a recipe…'),
    caption: 'Write a notebook with one section per step of a recipe, and open it',
    icon,
    execute: async () => {
      try {
        const cards = await api.recipes();
        const labels = cards.map(card => `${card.name} (${card.path})`);
        const choice = await InputDialog.getItem({ title: 'New notebook from a recipe', items: labels });
        if (!choice.button.accept || choice.value === null) {
          return;
        }
        const card = cards[labels.indexOf(choice.value)];
        const { path } = await api.newNotebook(card.ref);
        await openPath(app, path);
      } catch (error) {
        await showErrorMessage('New notebook from a recipe', String(error));
      }
    }
  });

  app.commands.addCommand(CommandIds.exportNotebook, {
    label: 'Export current notebook to a recipe',
    caption: 'Write the recipe the current workbench notebook describes, as *.recipe.yaml beside it',
    icon,
    execute: async () => {
      const current = notebooks.currentWidget;
      if (!current) {
        await showErrorMessage('Export to a recipe', 'Open a workbench notebook first (one made by "New notebook from a recipe").');
        return;
      }
      try {
        await current.context.save();
        const { path, hash } = await api.exportNotebook(current.context.path);
        const result = await showDialog({
          title: 'Recipe exported',
          body: `Wrote ${path} (recipe hash ${hash.slice(0, 12)}).`,
          buttons: [Dialog.cancelButton({ label: 'Close' }), Dialog.okButton({ label: 'Open' })]
        });
        if (result.button.accept) {
          await openPath(app, path);
        }
      } catch (error) {
        await showErrorMessage('Export to a recipe', String(error));
      }
    }
  });

  for (const command of [CommandIds.newNotebook, CommandIds.exportNotebook, CommandIds.showPanel]) {
    palette?.addItem({ command, category: CATEGORY });
  }
  launcher?.add({ command: CommandIds.newNotebook, category: 'Notebook', rank: 10, args: { isLauncher: true } });
  launcher?.add({ command: CommandIds.exportNotebook, category: 'Other', rank: 10 });
}
