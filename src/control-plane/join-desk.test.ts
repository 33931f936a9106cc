import { describe, expect, it } from 'vitest';
import { chooseNodeId } from './join-desk.js';

const none = () => undefined;

describe('chooseNodeId', () => {
  it('takes the id asked for, else one made from the hostname', () => {
    expect(chooseNodeId({ node_id: 'pi-7', hostname: 'x' }, none)).toEqual({ id: 'pi-7' });
    expect(chooseNodeId({ hostname: 'RaspberryPi_Garage.local' }, none)).toEqual({ id: 'raspberrypi-garage' });
  });

  it('refuses a taken id, saying who holds it, and ids that are no DNS label or are Otto’s', () => {
    expect(chooseNodeId({ node_id: 'pi-7', hostname: 'x' }, (id) => (id === 'pi-7' ? 'a node of otto.yaml' : undefined))).toEqual({
      error: 'node id "pi-7" is taken (a node of otto.yaml): pass another with --node-id, or free it with `otto node remove pi-7`',
    });
    expect(chooseNodeId({ node_id: 'Pi_7', hostname: 'x' }, none)).toMatchObject({ error: expect.stringContaining('not a DNS label') });
    expect(chooseNodeId({ hostname: '___' }, none)).toMatchObject({ error: expect.stringContaining('pass one with --node-id') });
    expect(chooseNodeId({ node_id: 'otto-pi', hostname: 'x' }, none)).toMatchObject({ error: expect.stringContaining('starts with "otto-"') });
  });
});
