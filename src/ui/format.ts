/** Small formatters and a DOM helper for the dashboard. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(value: number): string {
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v >= 100 || unit === 0 ? Math.round(v) : v.toFixed(1)} ${UNITS[unit]}`;
}

export function rate(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined ? '–' : `${bytes(bytesPerSecond)}/s`;
}

export function percent(value: number): string {
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)}%`;
}

export function clock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false });
}

export function ago(iso: string | null): string {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

type Child = Node | string | null | undefined | false;

/** `el('td', { class: 'x', 'data-field': 'y' }, 'text')`: text is always set as text, never as HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined) element.setAttribute(name, value);
  for (const child of children) if (child) element.append(child);
  return element;
}

/** Sets text (and a class) only when it changed, so the DOM does not churn on every update. */
export function setText(element: Element, text: string, className?: string): void {
  if (element.textContent !== text) element.textContent = text;
  if (className !== undefined && element.className !== className) element.className = className;
}
