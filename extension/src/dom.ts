/** A tiny element builder: the panel is plain DOM, so it needs no UI framework in the bundle. */

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { class?: string; title?: string; onclick?: (event: MouseEvent) => void; [key: string]: unknown } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key === 'class') {
      element.className = String(value);
    } else if (key === 'onclick') {
      element.addEventListener('click', value as EventListener);
    } else {
      element.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child);
    }
  }
  return element;
}

export function formatNumber(value: number): string {
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(3);
}

/**
 * A click handler for a button that starts server work: the button is disabled while `work` runs (no double
 * submit), a failure is shown in `status` with `failedClass` instead of escaping as an unhandled rejection, and
 * `usableAfter` says whether the button comes back enabled.
 */
export function whileBusy(
  button: HTMLButtonElement,
  status: HTMLElement,
  failedClass: string,
  work: () => Promise<void>,
  usableAfter: () => boolean = () => true
): () => Promise<void> {
  return async () => {
    button.disabled = true;
    try {
      await work();
    } catch (error) {
      status.className = failedClass;
      status.replaceChildren(String(error instanceof Error ? error.message : error));
    } finally {
      button.disabled = !usableAfter();
    }
  };
}
