import { describe, expect, it } from 'vitest';
import type { NodeView } from '../http/schemas.js';
import { PAGE_SIZE, countStates, matchesQuery, nodePage, pageOf, queryWords, rangeText } from './node-list.js';

function node(id: string, state: NodeView['state'] = 'online', labels: NodeView['labels'] = {}, host = '10.0.0.1'): NodeView {
  return {
    id,
    host,
    local: false,
    online: state === 'online',
    state,
    unreachable_since: null,
    last_seen: null,
    agent_version: null,
    arch: null,
    agent_pid: null,
    docker: null,
    labels,
    metrics: null,
    containers: [],
  };
}

const fleet = Array.from({ length: 10_000 }, (_, i) =>
  node(`n${String(i + 1).padStart(5, '0')}`, i % 100 === 7 ? 'unreachable' : i % 1000 === 9 ? 'lost' : 'online', { zone: i < 5_000 ? 'garage' : 'attic', gpu: i % 2 === 0 }, `10.${Math.floor(i / 256)}.${i % 256}.1`),
);

describe('node list of the dashboard', () => {
  it('counts the nodes by state, whatever the search', () => {
    expect(countStates(fleet)).toEqual({ total: 10_000, online: 9_890, unreachable: 100, lost: 10 });
    expect(nodePage(fleet, 'n00001', 0).counts).toEqual(countStates(fleet));
  });

  it('pages the nodes in config order, clamping the page asked', () => {
    const first = nodePage(fleet, '', 0);
    expect(first).toMatchObject({ matching: 10_000, page: 0, pages: Math.ceil(10_000 / PAGE_SIZE), first: 0 });
    expect(first.shown.map((n) => n.id)).toEqual(fleet.slice(0, PAGE_SIZE).map((n) => n.id));
    const last = nodePage(fleet, '', 10_000);
    expect(last.page).toBe(last.pages - 1);
    expect(last.shown.at(-1)!.id).toBe('n10000');
    expect(last.shown).toHaveLength(10_000 - (last.pages - 1) * PAGE_SIZE);
    expect(nodePage(fleet, '', -3).page).toBe(0);
    expect(nodePage(fleet, '', Number.NaN).page).toBe(0);
    expect(nodePage([], '', 2)).toMatchObject({ shown: [], matching: 0, page: 0, pages: 1 });
  });

  it('finds a node by a part of its id or host, any case', () => {
    expect(nodePage(fleet, 'N04242', 0).shown.map((n) => n.id)).toEqual(['n04242']);
    expect(nodePage(fleet, '10.16.146.', 0).shown.map((n) => n.id)).toEqual(['n04243']);
    expect(nodePage(fleet, 'no-such-node', 0)).toMatchObject({ shown: [], matching: 0, pages: 1 });
  });

  it('filters by label (key=value, key= for any value, or a value alone) and state, every word at once', () => {
    expect(nodePage(fleet, 'zone=attic', 0).matching).toBe(5_000);
    expect(nodePage(fleet, 'ZONE=attic gpu=true', 0).matching).toBe(2_500);
    expect(nodePage(fleet, 'zone=', 0).matching).toBe(10_000);
    expect(nodePage(fleet, 'shed=', 0).matching).toBe(0);
    expect(nodePage(fleet, 'garage', 0).matching).toBe(5_000);
    expect(nodePage(fleet, 'is:unreachable', 0).matching).toBe(100);
    expect(nodePage(fleet, 'is:lost zone=garage', 0).shown.map((n) => n.id)).toEqual(['n00010', 'n01010', 'n02010', 'n03010', 'n04010']);
    // `is:` with no state it knows is an ordinary word.
    expect(matchesQuery(node('is:x'), queryWords('is:x'))).toBe(true);
  });

  it('says where a node is and what the pager shows', () => {
    expect(pageOf(fleet, '', 'n00049')).toBe(1);
    expect(pageOf(fleet, 'zone=attic', 'n05001')).toBe(0);
    expect(pageOf(fleet, 'zone=attic', 'n00001')).toBeUndefined();
    expect(rangeText(nodePage(fleet, '', 1))).toBe('49–96 of 10,000');
    expect(rangeText(nodePage(fleet, 'nothing', 0))).toBe('no node matches');
  });

  it('pages 10,000 nodes with a search in a few milliseconds', () => {
    const started = performance.now();
    for (let i = 0; i < 20; i++) nodePage(fleet, 'zone=attic 4', i);
    expect((performance.now() - started) / 20).toBeLessThan(20);
  });
});
