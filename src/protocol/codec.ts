/**
 * A message as it travels: JSON, checked against its zod schema on the way in. Apart from the schemas
 * (messages.ts), so that what only encodes, or checks without zod (agent/inputs.ts), loads no zod.
 */
import type { z } from 'zod';

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses and validates one MQTT payload. Never throws: a bad message is the sender's problem. */
export function decode<T>(schema: z.ZodType<T>, payload: Buffer | string): DecodeResult<T> {
  const json = parseJson(payload);
  return json.ok ? validate(schema, json.value) : json;
}

export function parseJson(payload: Buffer | string): DecodeResult<unknown> {
  try {
    return { ok: true, value: JSON.parse(payload.toString()) };
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
}

/** What zod makes of `value`, or its first issue naming the field (`root` when it is the value itself). */
export function validate<T>(schema: z.ZodType<T>, value: unknown, root = '(root)'): DecodeResult<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const first = parsed.error.issues[0];
  const where = first?.path.length ? first.path.join('.') : root;
  return { ok: false, error: `${where}: ${(first?.message ?? 'invalid').replace(/^Invalid input: /, '')}` };
}

export function encode(message: unknown): string {
  return JSON.stringify(message);
}
