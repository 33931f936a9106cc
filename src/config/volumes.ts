/**
 * Volume specs as written under `services[].volumes`, checked the way Docker reads a bind
 * (`SRC:DST[:MODE]`), so a spec that passes validation is one Docker accepts on the node.
 */

export interface VolumeMount {
  /** A host path (absolute) or a named volume; absent for an anonymous volume (`/data`). */
  source?: string;
  kind: 'host' | 'named' | 'anonymous';
  target: string;
  modes: string[];
}

const EXPECTED_FORM = 'expected "SRC:DST[:MODE]" such as "/srv/data:/data:ro" or "cache:/cache"';
/** Docker's rule for local volume names. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker allows at most one mode of each group. */
const MODE_GROUPS: ReadonlyArray<{ modes: readonly string[]; only?: 'host' | 'named' }> = [
  { modes: ['ro', 'rw'] },
  { modes: ['z', 'Z'] },
  { modes: ['nocopy'], only: 'named' },
  { modes: ['consistent', 'cached', 'delegated'] },
  { modes: ['shared', 'slave', 'private', 'rshared', 'rslave', 'rprivate'], only: 'host' },
];
const ALL_MODES = MODE_GROUPS.flatMap((group) => group.modes);

/** Parses one volume spec. Throws an Error whose message is the reason only, for the caller to prefix. */
export function parseVolumeSpec(spec: string): VolumeMount {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((part) => part === '')) throw new Error(EXPECTED_FORM);
  if (parts.length === 1) {
    // Docker makes an anonymous volume; Compose writes it the same way.
    return { kind: 'anonymous', target: checkedTarget(parts[0]!), modes: [] };
  }
  const [source, target, mode] = parts as [string, string, string | undefined];
  const kind = source.startsWith('/') ? 'host' : 'named';
  if (kind === 'named' && !VOLUME_NAME.test(source)) {
    const why = /^[.~]/.test(source) || source.includes('/')
      ? 'Otto does not resolve relative paths, write the absolute path'
      : 'volume names have at least 2 characters: letters, digits, "_", "." or "-"';
    throw new Error(`source "${source}" is neither an absolute path on the node nor a volume name; ${why}`);
  }
  return { source, kind, target: checkedTarget(target), modes: mode === undefined ? [] : checkedModes(mode, kind) };
}

function checkedTarget(target: string): string {
  if (!target.startsWith('/')) throw new Error(`the path in the container "${target}" must be absolute`);
  if (/^\/+$/.test(target)) throw new Error('the path in the container cannot be "/"');
  return target;
}

function checkedModes(text: string, kind: 'host' | 'named'): string[] {
  const modes = text.split(',');
  for (const mode of modes) {
    if (!ALL_MODES.includes(mode)) throw new Error(`unknown mode "${mode}" (expected a comma list of ${ALL_MODES.join(', ')})`);
  }
  for (const group of MODE_GROUPS) {
    const chosen = modes.filter((mode) => group.modes.includes(mode));
    if (chosen.length > 1) {
      throw new Error(new Set(chosen).size === 1 ? `mode "${chosen[0]}" is given twice` : `modes ${chosen.map((m) => `"${m}"`).join(' and ')} exclude each other`);
    }
    if (chosen.length === 1 && group.only && group.only !== kind) {
      const other = kind === 'host' ? 'a host path' : 'a named volume';
      throw new Error(`"${chosen[0]}" applies to ${group.only === 'host' ? 'host paths' : 'named volumes'} only, not to ${other}`);
    }
  }
  return modes;
}
