/**
 * The files the agent keeps for itself and reads back at start (beside desired.json, which holds a
 * message): loaded only when one fails its check (inputs.ts).
 */
import { z } from 'zod';

/** registries.json: each registry's credential, by host (secret-store.ts). */
export const registriesFileSchema = z.record(z.string(), z.object({ hash: z.string(), username: z.string(), password: z.string() }));
export type RegistriesFile = z.infer<typeof registriesFileSchema>;

/** join.json: what a device that joined by itself needs to start again without a token (join.ts). */
export const joinStateSchema = z.object({ cluster: z.string(), node: z.string(), url: z.string(), joined_at: z.string() });
export type JoinState = z.infer<typeof joinStateSchema>;
