import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateCovers, ensureTlsMaterial } from './tls.js';

const connectWith = (port: number, ca: string, servername: string, host = '127.0.0.1') =>
  new Promise<string>((resolve) => {
    const socket = connect({ host, port, ca, servername }, () => {
      socket.end();
      resolve('ok');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

describe('ensureTlsMaterial', () => {
  it('makes a CA and a server certificate for the names, keys 0600; a TLS client verifying with the CA connects', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'otto-tls-')), 'tls');
    const material = await ensureTlsMaterial(dir, 'home', ['localhost', '127.0.0.1', 'broker.lan', '192.168.2.1']);
    expect(statSync(material.files.caKey).mode & 0o777).toBe(0o600);
    expect(statSync(material.files.key).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(material.cert);
    expect(cert.checkIssued(new X509Certificate(material.ca))).toBe(true);
    expect(cert.subjectAltName).toContain('IP Address:192.168.2.1');
    expect(cert.subjectAltName).toContain('DNS:broker.lan');

    const server = createServer({ cert: material.cert, key: material.key }, (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      expect(await connectWith(port, material.ca, 'localhost')).toBe('ok');
      expect(await connectWith(port, material.ca, 'broker.lan')).toBe('ok');
      // Another CA (another cluster's) is refused; so is a name the certificate does not cover.
      const other = await ensureTlsMaterial(join(mkdtempSync(join(tmpdir(), 'otto-tls-')), 'tls'), 'other', ['localhost']);
      expect(await connectWith(port, other.ca, 'localhost')).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
      expect(await connectWith(port, material.ca, 'elsewhere.lan')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }
  });

  it('keeps the CA and the certificate while the names stay covered; issues a new certificate (same CA) when they change', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'otto-tls-')), 'tls');
    const first = await ensureTlsMaterial(dir, 'home', ['localhost', '127.0.0.1']);
    const again = await ensureTlsMaterial(dir, 'home', ['127.0.0.1']);
    expect(again.cert).toBe(first.cert);
    const wider = await ensureTlsMaterial(dir, 'home', ['localhost', '127.0.0.1', '10.0.0.7']);
    expect(wider.cert).not.toBe(first.cert);
    expect(wider.ca).toBe(first.ca);
    expect(readFileSync(wider.files.ca, 'utf8')).toContain(first.ca.trim());
    expect(certificateCovers(wider.cert, ['10.0.0.7'])).toBe(true);
  });

  it('renews a certificate near its end', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'otto-tls-')), 'tls');
    const old = await ensureTlsMaterial(dir, 'home', ['localhost'], new Date(Date.now() - 820 * 86_400_000));
    expect(certificateCovers(old.cert, ['localhost'])).toBe(false);
    const renewed = await ensureTlsMaterial(dir, 'home', ['localhost']);
    expect(renewed.cert).not.toBe(old.cert);
  });
});
