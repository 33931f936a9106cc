/**
 * The files of an external Mosquitto 2 broker that enforces the embedded broker's rules
 * (protocol/broker-auth.ts): its configuration, its password file and its ACL file. Pure rendering: the
 * caller (`otto config mosquitto`) reads the credentials and writes the files.
 *
 * The password file is written the way `mosquitto_passwd` 2.0 writes it, so Otto needs no Mosquitto tools:
 * `user:$7$ITERATIONS$SALT$HASH`, PBKDF2-HMAC-SHA512 of the password over a random 12-byte salt, both in
 * base64 (pw__hash in Mosquitto's src/password_mosq.c).
 */
import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { mosquittoAcl } from '../protocol/broker-auth.js';

/** What mosquitto_passwd 2.0 uses (PW_DEFAULT_ITERATIONS, password_mosq.h); the broker reads the count from each line. */
export const MOSQUITTO_PBKDF2_ITERATIONS = 101;
const SALT_BYTES = 12;
const HASH_BYTES = 64;

export const MOSQUITTO_FILES = { conf: 'mosquitto.conf', passwords: 'passwd', acl: 'acl', data: 'data' } as const;

export interface MosquittoUser {
  username: string;
  password: string;
}

/** The listener's certificate files, once TLS is set up (mqtt.tls); absent: plain MQTT. */
export interface MosquittoTls {
  cafile: string;
  certfile: string;
  keyfile: string;
}

export interface MosquittoSetup {
  /** Absolute folder the files live in: mosquitto.conf names the others by absolute path. */
  dir: string;
  host: string;
  port: number;
  /** The largest MQTT remaining length a client may send, as the embedded broker allows. */
  maxPacketBytes: number;
  /** The control plane, every node, every reader. */
  users: MosquittoUser[];
  readers: string[];
  /** Node pools: each logs in as otto-pool-<name> to ask to join. */
  pools?: string[];
  /** The system user Mosquitto runs as: the owner of these files (they are 0600). */
  runAs: string;
  clusterName: string;
  tls?: MosquittoTls;
}

export interface MosquittoFiles {
  conf: string;
  passwords: string;
  acl: string;
}

/** One password the way mosquitto_passwd 2.0 hashes it. */
export function mosquittoPasswordHash(password: string, salt = randomBytes(SALT_BYTES), iterations = MOSQUITTO_PBKDF2_ITERATIONS): string {
  const hash = pbkdf2Sync(password, salt, iterations, HASH_BYTES, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether `password` matches a `$7$` hash, as the broker checks it. */
export function mosquittoPasswordMatches(password: string, encoded: string): boolean {
  const match = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded);
  if (!match) return false;
  const expected = Buffer.from(match[3]!, 'base64');
  const actual = pbkdf2Sync(password, Buffer.from(match[2]!, 'base64'), Number(match[1]), expected.length, 'sha512');
  return timingSafeEqual(actual, expected);
}

/**
 * Why Mosquitto cannot hold this username, or undefined. Its password file splits each line at the first
 * ':' and trims blanks, and skips lines that start with '#'; its ACL file reads a `user` line to its end.
 */
export function mosquittoUsernameProblem(username: string): string | undefined {
  if (username.includes(':')) return "a Mosquitto username cannot hold ':' (its password file splits each line there)";
  if (/[\r\n]/.test(username)) return 'a Mosquitto username cannot hold a line break';
  if (username.trim() !== username) return 'a Mosquitto username cannot start or end with a blank (Mosquitto trims them)';
  if (username.startsWith('#')) return "a Mosquitto username cannot start with '#' (its files read such a line as a comment)";
  return undefined;
}

export function renderMosquittoFiles(setup: MosquittoSetup): MosquittoFiles {
  return { conf: renderConf(setup), passwords: renderPasswords(setup), acl: mosquittoAcl(setup.readers, setup.pools ?? []) };
}

function renderPasswords(setup: MosquittoSetup): string {
  const lines = [`# Written by \`otto config mosquitto\` for cluster "${setup.clusterName}": write it again after a node is added or a credential rotated.`];
  for (const user of setup.users) lines.push(`${user.username}:${mosquittoPasswordHash(user.password)}`);
  return `${lines.join('\n')}\n`;
}

function renderConf(setup: MosquittoSetup): string {
  const path = (name: string) => join(setup.dir, name);
  // Mosquitto counts the packet's type byte in max_packet_size; the embedded broker limits the remaining length.
  const maxPacketSize = setup.maxPacketBytes + 1;
  const tls = setup.tls
    ? [`cafile ${setup.tls.cafile}`, `certfile ${setup.tls.certfile}`, `keyfile ${setup.tls.keyfile}`]
    : ['# TLS (mqtt.tls): the cafile, certfile and keyfile lines of this listener go here.'];
  return `${[
    `# Mosquitto 2 for Otto cluster "${setup.clusterName}", written by \`otto config mosquitto\`.`,
    `# Run: mosquitto -c ${path(MOSQUITTO_FILES.conf)}`,
    '# The same rules as the embedded broker: no anonymous client, each node speaks only for itself,',
    '# readers read metrics and status. After a node is added or a credential rotated, run',
    '# `otto config mosquitto` again and send mosquitto a SIGHUP: it reads its password and ACL files again.',
    '',
    '# The files here are 0600, its owner\'s: started as root, Mosquitto would otherwise become the user',
    '# "mosquitto", who cannot read them.',
    `user ${setup.runAs}`,
    'per_listener_settings false',
    '',
    `listener ${setup.port} ${setup.host}`,
    ...tls,
    '',
    'allow_anonymous false',
    `password_file ${path(MOSQUITTO_FILES.passwords)}`,
    `acl_file ${path(MOSQUITTO_FILES.acl)}`,
    '',
    '# Retained desired states and node statuses survive a restart: saved at exit and every minute',
    '# (after a crash, the control plane publishes its desired states again when it reconnects).',
    'persistence true',
    `persistence_location ${path(MOSQUITTO_FILES.data)}/`,
    'autosave_interval 60',
    '',
    `# A packet over ${setup.maxPacketBytes} bytes closes its connection before it is read, as on the embedded broker.`,
    `max_packet_size ${maxPacketSize}`,
  ].join('\n')}\n`;
}
