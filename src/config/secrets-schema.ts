/**
 * The otto.yaml shape of secrets and private registries, Compose style: a value is never written in the
 * file, only where to read it on the control plane's machine (a file, or a variable of its environment).
 * schema.ts places these under the top level (`secrets`, `registries`) and in services (`secrets`).
 */
import { z } from 'zod';
import { SECRET_NAME } from '../protocol/secrets.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** host, host:port, [ipv6]:port; no scheme, no path: what an image reference starts with. */
const REGISTRY_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/;

/** Where a value comes from: exactly one of `file` and `environment`; anything inline is refused with the way out. */
function valueSource(what: string) {
  const inline = `${what} is never written in otto.yaml: give {file: PATH} (relative to otto.yaml) or {environment: VAR} (of the control plane)`;
  return z
    .strictObject(
      {
        file: z.string().min(1).optional().describe('File on the control plane machine holding the value (relative to otto.yaml)'),
        environment: z.string().regex(ENV_NAME, 'expected a variable name such as "DB_PASSWORD"').optional().describe('Variable of the control plane environment holding the value'),
        // Present only to say why it is refused: a more useful message than "unknown key".
        value: z.never({ error: inline }).optional(),
      },
      { error: (issue) => (issue.code === 'invalid_type' && issue.input !== undefined && typeof issue.input !== 'object' ? inline : undefined) },
    )
    .refine((source) => (source.file === undefined) !== (source.environment === undefined), {
      message: 'expected exactly one of "file" or "environment"',
    });
}

export const secretSourceSchema = valueSource("a secret's value");

export const secretsSchema = z
  .record(z.string().regex(SECRET_NAME).max(128), secretSourceSchema, {
    error: (issue) => (issue.code === 'invalid_key' ? 'a secret name is letters, digits, "_", "." or "-", starting with a letter or digit (it becomes /run/secrets/NAME)' : undefined),
  })
  .default({})
  .describe('Secrets services may use (services[].secrets); each is mounted read-only at /run/secrets/NAME');

export const registrySchema = z.strictObject({
  username: z.string().min(1),
  password: valueSource('a registry password'),
});

export const registriesSchema = z
  .record(z.string().regex(REGISTRY_HOST), registrySchema, {
    error: (issue) => (issue.code === 'invalid_key' ? 'expected a registry host such as "ghcr.io" or "127.0.0.1:5000" (no scheme, no path)' : undefined),
  })
  .default({})
  .describe('Credentials of private registries, by host; a node gets one only when it runs an image from that host');

export const serviceSecretsSchema = z
  .array(z.string().min(1))
  .default([])
  .describe('Names of top-level secrets this service gets, each at /run/secrets/NAME');

export type SecretSource = z.infer<typeof secretSourceSchema>;
