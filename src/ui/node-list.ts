/**
 * Which node cards the dashboard shows: those matching the search, a page at a time (a fleet of thousands
 * of nodes is counted, searched and paged; only a page of cards, with their charts, is ever built), and
 * the counts for the summary line. Pure.
 */
import type { NodeView } from '../http/schemas.js';

export const PAGE_SIZE = 48;

export type NodeState = NodeView['state'];
const STATES: readonly NodeState[] = ['online', 'unreachable', 'lost'];

export interface NodeCounts {
  total: number;
  online: number;
  unreachable: number;
  lost: number;
}

export interface NodePage {
  /** The nodes of the page, in config order. */
  shown: NodeView[];
  /** Nodes matching the search (all of them without one). */
  matching: number;
  /** The page shown (clamped to the pages there are), from 0, and how many there are. */
  page: number;
  pages: number;
  /** Index in the matching nodes of the first one shown (0 when none match). */
  first: number;
  counts: NodeCounts;
}

/**
 * Every word of the query must match (case does not matter): `is:online` (`is:unreachable`, `is:lost`) the
 * node's state, a word with `=` a label (`zone=garage`, or `arch=` for any value of the label), any other
 * word a part of the node's id, host or a label value.
 */
export function matchesQuery(node: NodeView, words: string[]): boolean {
  return words.every((word) => {
    if (word.startsWith('is:') && STATES.includes(word.slice(3) as NodeState)) return node.state === word.slice(3);
    const equals = word.indexOf('=');
    const labels = Object.entries(node.labels ?? {});
    if (equals > 0) {
      const key = word.slice(0, equals);
      const value = word.slice(equals + 1);
      return labels.some(([k, v]) => k.toLowerCase() === key && (value === '' || String(v).toLowerCase() === value));
    }
    return node.id.toLowerCase().includes(word) || node.host.toLowerCase().includes(word) || labels.some(([, v]) => String(v).toLowerCase().includes(word));
  });
}

export function queryWords(query: string): string[] {
  return query.toLowerCase().split(/\s+/).filter(Boolean);
}

export function countStates(nodes: NodeView[]): NodeCounts {
  const counts: NodeCounts = { total: nodes.length, online: 0, unreachable: 0, lost: 0 };
  for (const node of nodes) counts[node.state]++;
  return counts;
}

/** Page `page` (from 0; clamped) of the nodes matching `query`, `size` to a page. */
export function nodePage(nodes: NodeView[], query: string, page: number, size = PAGE_SIZE): NodePage {
  const words = queryWords(query);
  const matching = words.length ? nodes.filter((n) => matchesQuery(n, words)) : nodes;
  const pages = Math.max(1, Math.ceil(matching.length / size));
  const current = Math.min(Math.max(0, Math.floor(page) || 0), pages - 1);
  const first = current * size;
  return { shown: matching.slice(first, first + size), matching: matching.length, page: current, pages, first, counts: countStates(nodes) };
}

/** The page that holds the node `id` among those matching `query` (to keep a node in view as the list changes), if it matches. */
export function pageOf(nodes: NodeView[], query: string, id: string, size = PAGE_SIZE): number | undefined {
  const words = queryWords(query);
  let index = 0;
  for (const node of nodes) {
    if (words.length && !matchesQuery(node, words)) continue;
    if (node.id === id) return Math.floor(index / size);
    index++;
  }
  return undefined;
}

/** "1–48 of 10,000" (or "none"): what the pager says. */
export function rangeText(p: Pick<NodePage, 'first' | 'shown' | 'matching'>): string {
  if (p.matching === 0) return 'no node matches';
  return `${(p.first + 1).toLocaleString('en')}–${(p.first + p.shown.length).toLocaleString('en')} of ${p.matching.toLocaleString('en')}`;
}
