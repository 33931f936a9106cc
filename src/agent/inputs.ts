/**
 * What the agent reads from others (messages) and from its own disk (files), checked without loading zod.
 * The build compiles each zod schema into a predicate (input-check-codegen.ts, dist/agent/input-checks.js):
 * an agent whose inputs are well-formed never loads zod and the schemas, several MB of its 50 MB budget on
 * a Pi (npm run bench:agent). An input a predicate does not accept goes to its zod schema, which strips unknown
 * keys or names the field that is wrong, so the schemas stay the one definition of every shape.
 */
import type { z } from 'zod';
import { parseJson, validate, type DecodeResult } from '../protocol/codec.js';
import { inputChecks } from './input-checks.js';

/** Each input and its schema, loaded the first time an input fails its predicate. */
export const INPUT_SCHEMAS = {
  desiredEnvelope: () => import('../protocol/messages.js').then((m) => m.desiredEnvelopeSchema),
  replicaSpec: () => import('../protocol/messages.js').then((m) => m.replicaSpecSchema),
  secretsMessage: () => import('../protocol/secrets.js').then((m) => m.secretsMessageSchema),
  logsRequest: () => import('../protocol/messages.js').then((m) => m.logsRequestSchema),
  logsControl: () => import('../protocol/messages.js').then((m) => m.logsControlSchema),
  joinReply: () => import('../protocol/messages.js').then((m) => m.joinReplySchema),
  registriesFile: () => import('./state-files.js').then((m) => m.registriesFileSchema),
  joinState: () => import('./state-files.js').then((m) => m.joinStateSchema),
};

export type InputName = keyof typeof INPUT_SCHEMAS;
export type Input<N extends InputName> = z.output<Awaited<ReturnType<(typeof INPUT_SCHEMAS)[N]>>>;

/** Inputs that went to zod, by name: none while every input is well-formed. */
export const checkedByZod = new Map<InputName, number>();

/** `value` checked as input `name`; `root` names the value itself in an error. */
export async function checkInput<N extends InputName>(name: N, value: unknown, root?: string): Promise<DecodeResult<Input<N>>> {
  if (inputChecks[name]?.(value)) return { ok: true, value: value as Input<N> };
  checkedByZod.set(name, (checkedByZod.get(name) ?? 0) + 1);
  const schema = (await INPUT_SCHEMAS[name]()) as unknown as z.ZodType<Input<N>>;
  return validate(schema, value, root);
}

/** A payload (JSON) checked as input `name`. Never throws: a bad message is the sender's problem. */
export async function decodeInput<N extends InputName>(name: N, payload: Buffer | string): Promise<DecodeResult<Input<N>>> {
  const json = parseJson(payload);
  return json.ok ? checkInput(name, json.value) : json;
}
