/** `otto config validate|schema`. */
import { loadConfig } from '../../config/load.js';
import { configJsonSchema } from '../../config/schema.js';
import type { GlobalOptions } from '../options.js';

export async function validate(options: GlobalOptions): Promise<void> {
  const { config } = await loadConfig(options.config);
  const { transportWarnings } = await import('../../config/transport.js');
  for (const warning of transportWarnings(config)) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${options.config} is valid: cluster "${config.cluster.name}", ${config.nodes.length} node(s), ${config.services.length} service(s)\n`);
}

export async function schema(): Promise<void> {
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
}
