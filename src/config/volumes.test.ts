import { describe, expect, it } from 'vitest';
import { parseVolumeSpec } from './volumes.js';

describe('parseVolumeSpec', () => {
  it('tells host paths, named volumes and anonymous volumes apart, with their modes', () => {
    expect(parseVolumeSpec('/srv/data:/data:ro,z')).toEqual({ source: '/srv/data', kind: 'host', target: '/data', modes: ['ro', 'z'] });
    expect(parseVolumeSpec('cache:/cache:nocopy')).toEqual({ source: 'cache', kind: 'named', target: '/cache', modes: ['nocopy'] });
    expect(parseVolumeSpec('/scratch')).toEqual({ kind: 'anonymous', target: '/scratch', modes: [] });
  });

  it.each([
    ['/a:/b:ro,ro', 'mode "ro" is given twice'],
    ['/a:/b:z,Z', 'modes "z" and "Z" exclude each other'],
    ['/a:/b:shared,rslave', 'modes "shared" and "rslave" exclude each other'],
    ['/a:/b:cached,delegated', 'modes "cached" and "delegated" exclude each other'],
    ['/a:/b:ro,', 'unknown mode ""'],
    ['/a::/b', 'expected "SRC:DST[:MODE]"'],
    ['~/data:/data', 'Otto does not resolve relative paths'],
    ['data', 'the path in the container "data" must be absolute'],
  ])('refuses %s as Docker would', (spec, reason) => {
    expect(() => parseVolumeSpec(spec)).toThrow(reason);
  });
});
