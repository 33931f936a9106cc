/** Looks inside the zod schema by config path: which keys an object allows, whether a value may be a string. */
import { z } from 'zod';
import type { ConfigPath } from './source.js';

/** The schema of the value at `path`, or undefined when the path leads nowhere. */
export function schemaAt(root: z.ZodType, path: ConfigPath): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const segment of path) {
    if (!current) return undefined;
    current = childSchema(current, segment);
  }
  return current;
}

/** The keys the object at `path` allows (empty when it is not an object). */
export function allowedKeysAt(root: z.ZodType, path: ConfigPath): string[] {
  const schema = schemaAt(root, path);
  return schema ? alternatives(schema).flatMap((option) => (option instanceof z.ZodObject ? Object.keys(option.shape) : [])) : [];
}

export function acceptsString(schema: z.ZodType): boolean {
  return alternatives(schema).some((option) => option instanceof z.ZodString || option instanceof z.ZodEnum);
}

function childSchema(schema: z.ZodType, segment: string | number): z.ZodType | undefined {
  for (const option of alternatives(schema)) {
    if (option instanceof z.ZodObject && typeof segment === 'string') {
      const child = (option.shape as Record<string, z.ZodType>)[segment];
      if (child) return child;
    }
    if (option instanceof z.ZodArray && typeof segment === 'number') return option.element as z.ZodType;
    if (option instanceof z.ZodRecord && typeof segment === 'string') return option.valueType as z.ZodType;
  }
  return undefined;
}

/** The concrete schemas a value may match, looking through default/optional/nullable and unions. */
function alternatives(schema: z.ZodType): z.ZodType[] {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    return alternatives(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodUnion) return (schema.options as z.ZodType[]).flatMap(alternatives);
  return [schema];
}
