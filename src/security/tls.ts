/**
 * The cluster's own certificate authority and the broker's (and API's) server certificate, for
 * `mqtt.tls: auto` and `http.tls: auto`: kept in `.otto/tls/` (keys 0600), made once, and a new server
 * certificate issued when the names it must cover change or it nears its end. RSA 2048 keys from Node's
 * crypto, certificates built and signed with node-forge (Node cannot make certificates itself). Agents get
 * the CA and verify the broker with it.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeAtomic } from '../workspace.js';

export interface TlsFiles {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface TlsMaterial {
  files: TlsFiles;
  /** PEM texts. */
  ca: string;
  cert: string;
  key: string;
}

const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
const SERVER_DAYS = 825;
/** A server certificate this close to its end is replaced at the next start. */
const RENEW_BEFORE_DAYS = 30;

export function tlsFiles(dir: string): TlsFiles {
  return { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
}

/** Whether a certificate covers every name (DNS names and IP addresses) and is good for a while yet. */
export function certificateCovers(pem: string, names: string[], now = new Date()): boolean {
  const cert = new X509Certificate(pem);
  if (Date.parse(cert.validTo) - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return false;
  const sans = (cert.subjectAltName ?? '').split(',').map((s) => s.trim());
  return names.every((name) => sans.includes(isIP(name) ? `IP Address:${name}` : `DNS:${name}`));
}

/** An RSA key pair from Node's own crypto (native: fast even on a Pi), as PEM. */
function rsaKeys(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

const serial = () => `01${randomBytes(15).toString('hex')}`;

/**
 * The CA (made once) and a server certificate covering `names` (made again when they change): what
 * `mqtt.tls: auto` serves. `cluster` names the CA, so two clusters' CAs are told apart.
 */
export async function ensureTlsMaterial(dir: string, cluster: string, names: string[], now = new Date()): Promise<TlsMaterial> {
  const files = tlsFiles(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { default: forge } = await import('node-forge');
  const { pki } = forge;
  let caPem: string;
  let caKeyPem: string;
  if (existsSync(files.ca) && existsSync(files.caKey)) {
    caPem = await readFile(files.ca, 'utf8');
    caKeyPem = await readFile(files.caKey, 'utf8');
  } else {
    const keys = rsaKeys();
    const ca = pki.createCertificate();
    ca.publicKey = pki.publicKeyFromPem(keys.publicKey);
    ca.serialNumber = serial();
    ca.validity.notBefore = new Date(now.getTime() - 60_000);
    ca.validity.notAfter = new Date(now.getTime() + CA_DAYS * DAY_MS);
    const subject = [{ name: 'commonName', value: `Otto cluster ${cluster} CA` }];
    ca.setSubject(subject);
    ca.setIssuer(subject);
    ca.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    ca.sign(pki.privateKeyFromPem(keys.privateKey), forge.md.sha256.create());
    caPem = pki.certificateToPem(ca);
    caKeyPem = keys.privateKey;
    await writeAtomic(files.caKey, caKeyPem, 0o600);
    await writeAtomic(files.ca, caPem, 0o644);
  }
  if (existsSync(files.cert) && existsSync(files.key)) {
    const cert = await readFile(files.cert, 'utf8');
    if (certificateCovers(cert, names, now) && new X509Certificate(cert).checkIssued(new X509Certificate(caPem))) {
      return { files, ca: caPem, cert, key: await readFile(files.key, 'utf8') };
    }
  }
  const keys = rsaKeys();
  const caCert = pki.certificateFromPem(caPem);
  const server = pki.createCertificate();
  server.publicKey = pki.publicKeyFromPem(keys.publicKey);
  server.serialNumber = serial();
  server.validity.notBefore = new Date(now.getTime() - 60_000);
  server.validity.notAfter = new Date(now.getTime() + SERVER_DAYS * DAY_MS);
  server.setSubject([{ name: 'commonName', value: names[0] ?? 'otto' }]);
  server.setIssuer(caCert.subject.attributes);
  server.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(pki.privateKeyFromPem(caKeyPem), forge.md.sha256.create());
  const cert = pki.certificateToPem(server);
  await writeAtomic(files.key, keys.privateKey, 0o600);
  await writeAtomic(files.cert, cert, 0o644);
  return { files, ca: caPem, cert, key: keys.privateKey };
}
