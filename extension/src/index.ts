/** PPML Workbench for JupyterLab: the sidebar panel and the recipe/notebook commands. */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';

import { CommandIds, openPath, registerCommands } from './commands';
import { workbenchIcon } from './icon';
import { WorkbenchPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'ppml-workbench:plugin',
  description: 'Recipe gallery, headless runs and recipe/notebook round trip for the PPML Workbench.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILauncher, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null
  ) => {
    const panel = new WorkbenchPanel(path => openPath(app, path));
    panel.title.icon = workbenchIcon;
    app.shell.add(panel, 'left', { rank: 200 });
    restorer?.add(panel, panel.id);
    app.commands.addCommand(CommandIds.showPanel, {
      label: 'Show the PPML Workbench panel',
      execute: () => app.shell.activateById(panel.id)
    });
    registerCommands(app, workbenchIcon, notebooks, palette, launcher);
  }
};

export default plugin;
