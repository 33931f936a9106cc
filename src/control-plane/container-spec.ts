/**
 * Turns a service of otto.yaml into the fully resolved ContainerSpec an agent runs. Pure.
 */
import { resolveServiceEnv } from '../config/load.js';
import { parsePortSpec } from '../config/ports.js';
import type { ServiceConfig } from '../config/schema.js';
import { parseDuration, parseSize } from '../config/units.js';
import { InternalError } from '../errors.js';
import type { ContainerSpec } from '../protocol/messages.js';

/** Splits a command string the way Compose does: on spaces, honouring single and double quotes. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < command.length) word += command[++i];
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function healthcheckTest(test: string | string[]): string[] {
  if (typeof test === 'string') return ['CMD-SHELL', test];
  return ['CMD', 'CMD-SHELL', 'NONE'].includes(test[0]!) ? test : ['CMD', ...test];
}

/** `TERM` and `SIGTERM` are the same signal to Docker; numbers stay numbers. */
export function normalizeSignal(signal: string): string {
  return /^\d+$/.test(signal) || signal.startsWith('SIG') ? signal : `SIG${signal}`;
}

/** Secret name -> hash of its current value (secret-sources.ts); the hash is in the spec, so a new value rolls the replicas. */
export type SecretDigests = ReadonlyMap<string, string>;

function secretRefs(service: ServiceConfig, digests: SecretDigests): ContainerSpec['secrets'] {
  if (service.secrets.length === 0) return undefined;
  return [...service.secrets].sort().map((name) => {
    const hash = digests.get(name);
    if (hash === undefined) throw new InternalError(`no value read for secret "${name}" of service ${service.name}`);
    return { name, hash };
  });
}

export function containerSpecOf(service: ServiceConfig, secretDigests: SecretDigests = new Map()): ContainerSpec {
  const hc = service.healthcheck;
  return {
    image: service.image,
    command: service.command === undefined ? undefined : typeof service.command === 'string' ? splitCommand(service.command) : service.command,
    env: resolveServiceEnv(service),
    ports: service.ports.map(parsePortSpec),
    volumes: service.volumes,
    restart: service.restart,
    labels: Object.fromEntries(Object.entries(service.labels).map(([k, v]) => [k, String(v)])),
    healthcheck: hc && {
      test: healthcheckTest(hc.test),
      interval_ms: parseDuration(hc.interval),
      timeout_ms: parseDuration(hc.timeout),
      retries: hc.retries,
      start_period_ms: parseDuration(hc.start_period),
    },
    nano_cpus: service.cpus === undefined ? undefined : Math.round(service.cpus * 1e9),
    memory_bytes: service.memory === undefined ? undefined : parseSize(service.memory),
    // Left out when not set, so a service that never set them keeps its spec hash (and its containers).
    init: service.init ? true : undefined,
    stop_signal: service.stop_signal === undefined ? undefined : normalizeSignal(service.stop_signal),
    stop_grace_ms: service.stop_grace_period === undefined ? undefined : parseDuration(service.stop_grace_period),
    secrets: secretRefs(service, secretDigests),
  };
}
