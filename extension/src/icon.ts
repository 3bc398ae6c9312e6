/** The workbench's icon: three parties joined through a protected aggregate. */

import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="2.6"/><circle cx="19" cy="6" r="2.6"/><circle cx="12" cy="20" r="2.6"/>
    <path d="M12 8.2l3.6 2.1v4.1L12 16.5l-3.6-2.1v-4.1z"/>
    <path d="M6.8 7.4l3.4 2 .6-1-3.4-2zM17.2 7.4l-3.4 2-.6-1 3.4-2zM11.4 16.5h1.2v1.4h-1.2z"/>
  </g>
</svg>`;

export const workbenchIcon = new LabIcon({ name: 'ppml-workbench:icon', svgstr });
