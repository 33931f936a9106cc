/** Cross-field checks of secrets and registries: services name secrets that exist, once; hosts are distinct. */
import { normalizeRegistryHost } from '../protocol/secret-names.js';
import type { OttoConfig } from './schema.js';
import type { ConfigPath, Problem } from './source.js';
import { closestMatch } from './suggest.js';

export function secretProblems(config: OttoConfig, where: (path: ConfigPath) => string): Problem[] {
  const defined = Object.keys(config.secrets);
  const problems: Problem[] = [];
  config.services.forEach((service, serviceIndex) => {
    const seen = new Map<string, number>();
    service.secrets.forEach((name, index) => {
      const path: ConfigPath = ['services', serviceIndex, 'secrets', index];
      const first = seen.get(name);
      if (first !== undefined) {
        problems.push({ path, message: `secret "${name}" is listed twice (first at ${where(['services', serviceIndex, 'secrets', first])})` });
        return;
      }
      seen.set(name, index);
      if (defined.includes(name)) return;
      if (defined.length === 0) {
        problems.push({ path, message: `unknown secret "${name}": define it under the top-level "secrets" (${name}: {file: PATH})` });
        return;
      }
      const suggestion = closestMatch(name, defined);
      const hint = suggestion ? `, did you mean "${suggestion}"?` : '';
      problems.push({ path, message: `unknown secret "${name}"${hint} (secrets: ${defined.join(', ')})` });
    });
  });
  const hosts = new Map<string, string>();
  for (const host of Object.keys(config.registries)) {
    const normal = normalizeRegistryHost(host);
    const other = hosts.get(normal);
    if (other !== undefined) {
      problems.push({ path: ['registries', host], message: `the same registry as "${other}" (first at ${where(['registries', other])}); keep one`, atKey: true });
    }
    hosts.set(normal, host);
  }
  return problems;
}
