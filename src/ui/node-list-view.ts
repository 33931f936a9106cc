/**
 * The dashboard's node list for a fleet of any size: a summary line (nodes by state, each a filter), a
 * search box and a pager over the cards (node-list.ts decides which). Only the cards of the page exist;
 * when the page's nodes change, `shownChanged` says which they are, so the live stream can carry the
 * metrics and containers of those only.
 */
import type { NodeView } from '../http/schemas.js';
import { el, setText } from './format.js';
import { PAGE_SIZE, nodePage, rangeText, type NodeCounts } from './node-list.js';

export interface NodeCardLike {
  readonly root: HTMLElement;
  update(node: NodeView): void;
  remove(): void;
}

export interface NodeListElements {
  /** Where the cards go. */
  cards: HTMLElement;
  summary: HTMLElement;
  search: HTMLInputElement;
  pager: HTMLElement;
}

/** Typing is searched this long after the last key (10,000 nodes are searched in a few ms, but not per key). */
const SEARCH_DELAY_MS = 120;

export class NodeListView<C extends NodeCardLike> {
  private readonly cards = new Map<string, C>();
  private nodes: NodeView[] = [];
  private query = '';
  private page = 0;
  /** The ids shown, in order, as last laid out and as last told to `shownChanged`. */
  private laidOut = '';
  private told?: string;
  private searchTimer?: number;
  /** The summary's counts, each a button that shows the nodes it counts (made once: a status must not swallow a click). */
  private readonly counts = {} as Record<keyof NodeCounts, HTMLButtonElement>;
  private readonly pagerParts: { first: HTMLButtonElement; prev: HTMLButtonElement; next: HTMLButtonElement; last: HTMLButtonElement; range: HTMLElement; pageOf: HTMLElement };

  constructor(
    private readonly els: NodeListElements,
    private readonly makeCard: (id: string) => C,
    private readonly shownChanged: (ids: string[]) => void,
    /** Brings a card of the page up to date with its node (each status, and when the page changes). */
    private readonly updateCard: (card: C, node: NodeView) => void = (card, node) => card.update(node),
    private readonly pageSize = PAGE_SIZE,
  ) {
    const button = (action: string, label: string, text: string) => el('button', { type: 'button', class: 'secondary', 'data-action': action, 'aria-label': label }, text);
    this.pagerParts = {
      first: button('first-page', 'first page', '«'),
      prev: button('previous-page', 'previous page', '‹ Prev'),
      next: button('next-page', 'next page', 'Next ›'),
      last: button('last-page', 'last page', '»'),
      range: el('span', { 'data-field': 'range' }),
      pageOf: el('span', { class: 'muted', 'data-field': 'page' }),
    };
    for (const state of ['total', 'online', 'unreachable', 'lost'] as const) {
      const query = state === 'total' ? '' : `is:${state}`;
      const b = el('button', { type: 'button', class: 'count muted', 'data-count': state, title: state === 'total' ? 'show every node' : `show the ${state} nodes` });
      b.addEventListener('click', () => this.search(query));
      this.counts[state] = b;
    }
    els.summary.replaceChildren(...Object.values(this.counts));
    const p = this.pagerParts;
    els.pager.replaceChildren(p.first, p.prev, p.range, p.pageOf, p.next, p.last);
    p.first.addEventListener('click', () => this.goTo(0));
    p.prev.addEventListener('click', () => this.goTo(this.page - 1));
    p.next.addEventListener('click', () => this.goTo(this.page + 1));
    p.last.addEventListener('click', () => this.goTo(Number.MAX_SAFE_INTEGER));
    els.search.addEventListener('input', () => {
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => this.search(els.search.value), SEARCH_DELAY_MS);
    });
    els.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        window.clearTimeout(this.searchTimer);
        this.search(els.search.value);
      } else if (e.key === 'Escape') {
        els.search.value = '';
        this.search('');
      }
    });
  }

  /** A new status: the list, its counts and the page's cards follow it. */
  apply(nodes: NodeView[]): void {
    this.nodes = nodes;
    this.render();
  }

  /** The card of a node, if it is on the page. */
  card(id: string): C | undefined {
    return this.cards.get(id);
  }

  search(query: string): void {
    if (this.els.search.value !== query) this.els.search.value = query;
    if (query.trim() === this.query.trim()) return;
    this.query = query;
    this.page = 0;
    this.render();
  }

  goTo(page: number): void {
    this.page = page;
    this.render();
  }

  private render(): void {
    const p = nodePage(this.nodes, this.query, this.page, this.pageSize);
    this.page = p.page;
    this.renderSummary(p.counts);
    setText(this.pagerParts.range, rangeText(p));
    setText(this.pagerParts.pageOf, p.pages > 1 ? `page ${(p.page + 1).toLocaleString('en')} of ${p.pages.toLocaleString('en')}` : '');
    this.pagerParts.first.disabled = this.pagerParts.prev.disabled = p.page === 0;
    this.pagerParts.next.disabled = this.pagerParts.last.disabled = p.page >= p.pages - 1;
    this.els.pager.hidden = p.pages <= 1 && this.query.trim() === '';

    const ids = p.shown.map((n) => n.id);
    const wanted = new Set(ids);
    for (const [id, card] of this.cards) if (!wanted.has(id)) (card.remove(), this.cards.delete(id));
    for (const node of p.shown) {
      let card = this.cards.get(node.id);
      if (!card) this.cards.set(node.id, (card = this.makeCard(node.id)));
      this.updateCard(card, node);
    }
    const key = ids.join(',');
    if (key !== this.laidOut) {
      this.els.cards.replaceChildren(...ids.map((id) => this.cards.get(id)!.root));
      this.laidOut = key;
    }
    if (key !== this.told) {
      this.told = key;
      this.shownChanged(ids);
    }
  }

  private renderSummary(counts: NodeCounts): void {
    const n = (value: number) => value.toLocaleString('en');
    const current = this.query.trim().toLowerCase();
    const show = (state: keyof NodeCounts, text: string, tone: string) => {
      const query = state === 'total' ? '' : `is:${state}`;
      setText(this.counts[state], text, `count ${tone}${current === query ? ' active' : ''}`);
    };
    show('total', `${n(counts.total)} node${counts.total === 1 ? '' : 's'}`, 'muted');
    show('online', `${n(counts.online)} online`, counts.online === counts.total ? 'ok' : 'muted');
    show('unreachable', `${n(counts.unreachable)} unreachable`, counts.unreachable ? 'warn' : 'muted');
    show('lost', `${n(counts.lost)} lost`, counts.lost ? 'bad' : 'muted');
  }
}
