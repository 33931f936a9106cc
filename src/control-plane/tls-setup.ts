/**
 * The certificates the control plane serves: the broker's (mqtts) and the API's (https), from Otto's own
 * CA (`tls: auto`, made in .otto/tls) or from the user's files. The server certificate names every address
 * a client may dial: this machine's names, mqtt.host, mqtt.advertise, the address remote nodes are given,
 * http.listen.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { OttoConfig } from '../config/schema.js';
import { apiTls, brokerTransport } from '../config/transport.js';
import { InfrastructureError, errorMessage } from '../errors.js';
import { isWildcardHost } from '../protocol/broker-url.js';
import { remoteBrokerHost } from '../remote/mqtt-address.js';
import { ensureTlsMaterial } from '../security/tls.js';

export interface ServedTls {
  /** The broker's certificate and key, and the CA clients verify it with. */
  broker?: { cert: string; key: string; ca: string };
  api?: { cert: string; key: string };
  /** Otto's own CA, when it made the certificates: clients on this machine trust it. */
  ownCa?: string;
}

export function certificateNames(config: OttoConfig): string[] {
  const names = ['localhost', '127.0.0.1', hostname(), config.mqtt.host, config.mqtt.advertise, remoteBrokerHost(config.mqtt), config.http.listen];
  return [...new Set(names.filter((n): n is string => Boolean(n) && !isWildcardHost(n!)))];
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InfrastructureError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, 'check the paths under mqtt.tls / http.tls in otto.yaml');
  }
}

export async function servedTls(config: OttoConfig, tlsDir: string): Promise<ServedTls> {
  const mqtt = brokerTransport(config);
  const http = apiTls(config);
  const own = mqtt.ownCa || http.ownCa ? await ensureTlsMaterial(tlsDir, config.cluster.name, certificateNames(config)) : undefined;
  const served: ServedTls = { ownCa: own?.ca };
  if (mqtt.tls) {
    const files = config.mqtt.tls;
    served.broker =
      typeof files === 'object'
        ? {
            ca: await readPem(files.ca, 'mqtt.tls.ca'),
            cert: files.cert ? await readPem(files.cert, 'mqtt.tls.cert') : '',
            key: files.key ? await readPem(files.key, 'mqtt.tls.key') : '',
          }
        : // The chain up to the CA: a device that joins reads the CA from the handshake and checks its fingerprint.
          { ca: own!.ca, cert: `${own!.cert.trimEnd()}\n${own!.ca}`, key: own!.key };
  }
  if (http.tls) {
    const files = config.http.tls;
    served.api = typeof files === 'object' ? { cert: await readPem(files.cert, 'http.tls.cert'), key: await readPem(files.key, 'http.tls.key') } : { cert: own!.cert, key: own!.key };
  }
  return served;
}
