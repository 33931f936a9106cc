/**
 * `${VAR}` and `${VAR:-default}` in otto.yaml values, Compose style; `$$` is a literal `$`. Substitution
 * happens on the parsed YAML nodes (not the raw text), so positions stay right and a value can never
 * break the YAML structure.
 */
import { isMap, isScalar, isSeq, type Scalar } from 'yaml';
import type { ConfigPath, ConfigSource, Problem } from './source.js';

const EXPRESSION = /\$\$|\$\{([^}]*)(\}?)/g;
const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

export interface InterpolationError {
  /** The offending text, e.g. `${TOKEN}`. */
  expression: string;
  message: string;
}

/** Substitutes the variables of one string. Unresolved expressions stay in the result as written. */
export function interpolate(text: string, env: NodeJS.ProcessEnv): { value: string; errors: InterpolationError[] } {
  const errors: InterpolationError[] = [];
  const value = text.replace(EXPRESSION, (expression: string, body: string | undefined, closed: string | undefined) => {
    if (expression === '$$') return '$';
    if (!closed) {
      errors.push({ expression, message: `unterminated "${expression}" (missing "}")` });
      return expression;
    }
    const reference = REFERENCE.exec(body ?? '');
    if (!reference) {
      const message = `invalid variable reference "${expression}" (expected \${NAME} or \${NAME:-default}; write $$ for a literal $)`;
      errors.push({ expression, message });
      return expression;
    }
    const [, name = '', fallback] = reference;
    const current = env[name];
    // Like Compose, `:-` also replaces a variable that is set but empty.
    if (fallback !== undefined) return current ? current : fallback;
    if (current === undefined) {
      errors.push({ expression, message: `variable "${name}" is not set (use \${${name}:-default} for a default)` });
      return expression;
    }
    return current;
  });
  return { value, errors };
}

/**
 * Interpolates every string value of the document in place; returns the problems with their exact offsets.
 * `acceptsString(path)` tells whether the value at `path` may stay a string: an unquoted `port: ${PORT}`
 * must become the number it stands for, while `VERSION: ${V}` with V=1.10 must stay "1.10".
 */
export function interpolateDocument(
  source: ConfigSource,
  env: NodeJS.ProcessEnv,
  acceptsString: (path: ConfigPath) => boolean,
): Problem[] {
  const problems: Problem[] = [];
  forEachScalar(source.document.contents, [], (scalar, path) => {
    if (typeof scalar.value !== 'string' || !scalar.value.includes('$')) return;
    const { value, errors } = interpolate(scalar.value, env);
    for (const { expression, message } of errors) {
      problems.push({ path, message, offset: offsetInSource(source.text, scalar, expression) });
    }
    scalar.value = scalar.type === 'PLAIN' && !acceptsString(path) ? asPlainScalar(value) : value;
  });
  return problems;
}

/** Reads an unquoted value the way YAML would have if it were written in the file. */
function asPlainScalar(text: string): string | number | boolean {
  if (/^[-+]?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

function forEachScalar(node: unknown, path: ConfigPath, visit: (scalar: Scalar, path: ConfigPath) => void): void {
  if (isScalar(node)) visit(node, path);
  else if (isSeq(node)) node.items.forEach((item, index) => forEachScalar(item, [...path, index], visit));
  else if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key !== undefined) forEachScalar(pair.value, [...path, key], visit);
    }
  }
  // Aliases need nothing: the anchored node they point to is interpolated where it is defined.
}

/** Where `expression` is written inside the scalar, so the error points at the `${`, not the value's start. */
function offsetInSource(text: string, scalar: Scalar, expression: string): number | undefined {
  if (!scalar.range) return undefined;
  const [start, end] = scalar.range;
  const found = text.slice(start, end).indexOf(expression);
  return start + Math.max(found, 0);
}
