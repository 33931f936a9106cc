/** Turns zod's validation issues into problems a person fixing otto.yaml can act on. */
import type { z } from 'zod';
import { allowedKeysAt } from './schema-paths.js';
import type { ConfigPath, Problem } from './source.js';
import { closestMatch } from './suggest.js';

/**
 * Error map for `safeParse`: readable messages for zod's built-in checks. zod only asks it when the
 * schema gives no message of its own, so the schema's wording ("expected a duration such as ...") wins.
 */
export function readableMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.input === undefined) return 'missing required key';
  switch (issue.code) {
    case 'invalid_type':
      if (isNonFinite(issue.input) && (issue.expected === 'number' || issue.expected === 'int')) return finiteMessage(issue.input);
      if (issue.expected === 'int' && typeof issue.input === 'number') return `expected integer, got ${issue.input}`;
      return `expected ${typeName(issue.expected)}, got ${typeOf(issue.input)}`;
    case 'invalid_union': {
      // Each branch failed on its own; when they all failed on the type, list the types that would do.
      const expected = issue.errors.flat().flatMap((inner) =>
        inner.code === 'invalid_type' && inner.path.length === 0 ? [typeName(inner.expected)] : [],
      );
      if (isNonFinite(issue.input) && expected.some((name) => name === 'number' || name === 'integer')) return finiteMessage(issue.input);
      return expected.length > 0 ? `expected ${[...new Set(expected)].join(' or ')}, got ${typeOf(issue.input)}` : undefined;
    }
    case 'invalid_value': {
      const suggestion = typeof issue.input === 'string' ? closestMatch(issue.input, issue.values.map(String)) : undefined;
      const options = issue.values.map((value) => JSON.stringify(value)).join(', ');
      return `expected one of ${options}, got ${show(issue.input)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    }
    case 'too_small':
    case 'too_big':
      return boundMessage(issue);
    default:
      return undefined;
  }
}

/** One problem per zod issue, and one per unknown key (zod groups those). */
export function schemaProblems(issues: z.core.$ZodIssue[], data: unknown, schema: z.ZodType): Problem[] {
  return issues.flatMap((issue): Problem[] => {
    const path = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(schema, path);
      return issue.keys.map((key) => ({ path: [...path, key], message: unknownKeyMessage(key, allowed), atKey: true }));
    }
    // The schema's own format messages say what is expected; add what was found, unless they say it already.
    if (issue.code === 'invalid_format' && !issue.message.includes(', got ')) {
      return [{ path, message: `${issue.message}, got ${show(valueAt(data, path))}` }];
    }
    return [{ path, message: issue.message }];
  });
}

function unknownKeyMessage(key: string, allowed: string[]): string {
  const suggestion = closestMatch(key, allowed);
  if (suggestion) return `unknown key (did you mean "${suggestion}"?)`;
  return allowed.length > 0 ? `unknown key (expected one of: ${allowed.join(', ')})` : 'unknown key';
}

function boundMessage(issue: z.core.$ZodRawIssue<z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig>): string | undefined {
  const small = issue.code === 'too_small';
  const limit = Number(small ? issue.minimum : issue.maximum);
  switch (issue.origin) {
    case 'number':
    case 'int': {
      const operator = small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return `expected number ${operator} ${limit}, got ${show(issue.input)}`;
    }
    case 'string':
      if (small && limit === 1) return 'must not be empty';
      return `expected ${small ? 'at least' : 'at most'} ${limit} characters, got ${String(issue.input).length}`;
    case 'array':
      return `expected ${small ? 'at least' : 'at most'} ${limit} ${limit === 1 ? 'item' : 'items'}, got ${(issue.input as unknown[]).length}`;
    default:
      return undefined;
  }
}

/** YAML reads 1e400 and .inf as Infinity, .nan as NaN: numbers to JavaScript, but no count or limit. */
function isNonFinite(value: unknown): value is number {
  return typeof value === 'number' && !Number.isFinite(value);
}

function finiteMessage(value: number): string {
  return `expected a finite number, got ${value}`;
}

function typeName(expected: string): string {
  const names: Record<string, string> = { int: 'integer', object: 'mapping', record: 'mapping', array: 'list' };
  return names[expected] ?? expected;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value === 'object' ? 'mapping' : typeof value;
}

/** A found value as it would read in the file: strings quoted, collections by their kind. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return `a ${typeOf(value)}`;
}

function valueAt(data: unknown, path: ConfigPath): unknown {
  let current = data;
  for (const segment of path) current = (current as Record<string | number, unknown> | undefined)?.[segment];
  return current;
}
