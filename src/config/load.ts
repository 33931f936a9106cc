/**
 * Reads otto.yaml: YAML syntax, `${VAR}` interpolation, the zod schema, then the checks that span fields.
 * Every problem found is reported at once, each as `file:line:column path: message`, in one ConfigError.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, errorMessage } from '../errors.js';
import { checkConsistency } from './consistency.js';
import { interpolateDocument } from './interpolate.js';
import { readableMessage, schemaProblems } from './issues.js';
import { MAX_CONFIG_BYTES } from './limits.js';
import { ottoConfigSchema, type OttoConfig, type ServiceConfig } from './schema.js';
import { acceptsString, schemaAt } from './schema-paths.js';
import { ConfigSource, formatPath, type Located } from './source.js';

export interface LoadedConfig {
  config: OttoConfig;
  /** Absolute path of the file. */
  path: string;
  text: string;
  /** sha256 of the text, hex: tells whether the file changed since it was applied. */
  hash: string;
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    // Checked before reading: a log or an image given as -c by mistake is never loaded into memory.
    const { size } = await stat(absolute);
    if (size > MAX_CONFIG_BYTES) throw tooLarge(path, size);
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigError([`${path}: file not found`], 'run otto in the folder of your otto.yaml or pass -c PATH');
    }
    throw new ConfigError([`${path}: cannot read the file: ${errorMessage(err)}`], 'check the path and its permissions');
  }
  const config = parseConfig(text, path, env);
  return { config, path: absolute, text, hash: createHash('sha256').update(text).digest('hex') };
}

/** Parses and validates the text of otto.yaml; `file` is how messages name it (as the user wrote it). */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): OttoConfig {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(file, bytes);
  const source = new ConfigSource(text, file);
  const syntaxErrors = source.syntaxErrors();
  if (syntaxErrors.length > 0) throw configError(syntaxErrors);
  if (source.document.contents === null) {
    throw configError([source.render({ path: [], message: 'the file is empty; it needs at least a "nodes" list' })]);
  }

  const problems = interpolateDocument(source, env, (path) => {
    const schema = schemaAt(ottoConfigSchema, path);
    return schema === undefined || acceptsString(schema);
  });
  let data: unknown;
  try {
    data = source.document.toJS();
  } catch (err) {
    // e.g. too many aliases: yaml refuses to expand them
    throw new ConfigError([`${file}: ${errorMessage(err)}`]);
  }

  const parsed = ottoConfigSchema.safeParse(data, { error: readableMessage });
  if (parsed.success) {
    problems.push(...checkConsistency(parsed.data, (path) => source.where(path)));
  } else {
    // A value that still holds an unset `${VAR}` fails the schema too; its variable error says enough.
    const interpolated = new Set(problems.map((problem) => formatPath(problem.path)));
    const fromSchema = schemaProblems(parsed.error.issues, data, ottoConfigSchema);
    problems.push(...fromSchema.filter((problem) => !interpolated.has(formatPath(problem.path))));
  }
  if (problems.length > 0 || !parsed.success) throw configError(problems.map((problem) => source.render(problem)));
  return parsed.data;
}

/** The environment of a service as a map, whether written as a map or as a `NAME=value` list. */
export function resolveServiceEnv(service: Pick<ServiceConfig, 'environment'>): Record<string, string> {
  if (Array.isArray(service.environment)) {
    return Object.fromEntries(
      service.environment.map((entry) => {
        const equals = entry.indexOf('=');
        return equals < 0 ? [entry, ''] : [entry.slice(0, equals), entry.slice(equals + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(service.environment).map(([name, value]) => [name, value === null ? '' : String(value)]));
}

function tooLarge(file: string, bytes: number): ConfigError {
  const megabytes = (bytes / 1024 / 1024).toFixed(1);
  return new ConfigError(
    [`${file}: the file is ${megabytes} MB; otto.yaml may be at most ${MAX_CONFIG_BYTES / 1024 / 1024} MB`],
    'is this the right file? A fleet\'s otto.yaml is a few KB; pass the right one with -c PATH',
  );
}

function configError(located: Located[]): ConfigError {
  const sorted = [...located].sort((a, b) => a.line - b.line || a.column - b.column);
  return new ConfigError([...new Set(sorted.map((entry) => entry.text))]);
}
