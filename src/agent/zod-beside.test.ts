import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InfrastructureError } from '../errors.js';
import { localAgentBundle } from './bundle.js';
import { requireZodBeside, zodFileOf } from './zod-beside.js';

describe('zod beside the agent bundle', () => {
  it('is named after the bundle, locally and on a node', () => {
    expect(zodFileOf('/opt/otto/dist/agent/otto-agent-0.1.0.cjs')).toBe('/opt/otto/dist/agent/otto-agent-0.1.0.zod.cjs');
    expect(zodFileOf('/home/pi/.otto/agent/0.1.0/otto-agent.cjs')).toBe('/home/pi/.otto/agent/0.1.0/otto-agent.zod.cjs');
  });

  it('loads from beside the bundle, and says which file is missing when it is not there', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otto-zod-beside-'));
    const bundle = join(dir, 'otto-agent.cjs');
    copyFileSync(localAgentBundle().path, bundle);
    let missing: unknown;
    try {
      requireZodBeside(bundle);
    } catch (err) {
      missing = err;
    }
    expect(missing).toBeInstanceOf(InfrastructureError);
    expect((missing as InfrastructureError).message).toBe(`the agent's zod file ${join(dir, 'otto-agent.zod.cjs')} is missing`);

    copyFileSync(localAgentBundle().zodPath, zodFileOf(bundle));
    const zod = requireZodBeside(bundle) as typeof import('zod');
    expect(zod.z.object({ a: zod.z.number() }).safeParse({ a: 'x' }).success).toBe(false);
  });
});
