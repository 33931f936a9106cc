import { describe, expect, it } from 'vitest';
import { mosquittoAcl } from '../protocol/broker-auth.js';
import { mosquittoPasswordHash, mosquittoPasswordMatches, mosquittoUsernameProblem, renderMosquittoFiles, type MosquittoSetup } from './mosquitto.js';

// Written by Debian's mosquitto_passwd 2.0.11: `mosquitto_passwd -c -b file alice s3cret`.
const FROM_MOSQUITTO_PASSWD = '$7$101$SakU+2MZ7ktvnnkx$8j2djaA3H2xgpKz+3UV9c3ufWg4OqnkOOfXna9g43YPEOGNUEPYYbIk/jvsd/sJLYXcida3KQNMns2xvGjZ1xQ==';

const setup: MosquittoSetup = {
  dir: '/srv/otto/.otto/mosquitto',
  host: '127.0.0.1',
  port: 1883,
  maxPacketBytes: 1024 * 1024,
  users: [
    { username: 'otto-control-plane', password: 'the-token' },
    { username: 'pi-a', password: 'node-secret' },
    { username: 'grafana', password: 'reader-secret' },
  ],
  readers: ['grafana'],
  runAs: 'otto',
  clusterName: 'home',
};

describe('mosquitto password hashes', () => {
  it("are mosquitto_passwd 2.0's: the same salt and password give its very line", () => {
    const salt = Buffer.from(FROM_MOSQUITTO_PASSWD.split('$')[3]!, 'base64');
    expect(mosquittoPasswordHash('s3cret', salt)).toBe(FROM_MOSQUITTO_PASSWD);
    expect(mosquittoPasswordMatches('s3cret', FROM_MOSQUITTO_PASSWD)).toBe(true);
    expect(mosquittoPasswordMatches('s3cret!', FROM_MOSQUITTO_PASSWD)).toBe(false);
  });

  it('get a new 12-byte salt each time', () => {
    const [one, two] = [mosquittoPasswordHash('pw'), mosquittoPasswordHash('pw')];
    expect(one).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(one).not.toBe(two);
    expect(mosquittoPasswordMatches('pw', two)).toBe(true);
  });
});

describe('renderMosquittoFiles', () => {
  const files = renderMosquittoFiles(setup);

  it('writes one password line per identity, each matching its password', () => {
    const lines = files.passwords.split('\n').filter((line) => line && !line.startsWith('#'));
    expect(lines.map((line) => line.split(':')[0])).toEqual(['otto-control-plane', 'pi-a', 'grafana']);
    lines.forEach((line, i) => expect(mosquittoPasswordMatches(setup.users[i]!.password, line.slice(line.indexOf(':') + 1))).toBe(true));
    expect(files.passwords).not.toContain('node-secret');
  });

  it('configures a listener without anonymous clients, the files by absolute path, persistence and the size limit', () => {
    const conf = files.conf.split('\n').filter((line) => line && !line.startsWith('#'));
    expect(conf).toEqual([
      'user otto',
      'per_listener_settings false',
      'listener 1883 127.0.0.1',
      'allow_anonymous false',
      'password_file /srv/otto/.otto/mosquitto/passwd',
      'acl_file /srv/otto/.otto/mosquitto/acl',
      'persistence true',
      'persistence_location /srv/otto/.otto/mosquitto/data/',
      'autosave_interval 60',
      // Mosquitto counts the type byte: a remaining length of exactly 1 MiB passes, one more byte does not.
      'max_packet_size 1048577',
    ]);
    expect(files.acl).toBe(mosquittoAcl(['grafana']));
  });

  it("puts the listener's certificate lines right under it once TLS is set", () => {
    expect(renderMosquittoFiles(setup).conf).toMatch(/listener 1883 127\.0\.0\.1\n# TLS \(mqtt\.tls\): the cafile, certfile and keyfile lines/);
    const tls = renderMosquittoFiles({ ...setup, tls: { cafile: '/t/ca.pem', certfile: '/t/server.pem', keyfile: '/t/server-key.pem' } }).conf;
    expect(tls).toContain('listener 1883 127.0.0.1\ncafile /t/ca.pem\ncertfile /t/server.pem\nkeyfile /t/server-key.pem\n');
  });
});

describe('mosquittoUsernameProblem', () => {
  it("refuses what Mosquitto's files cannot hold, and takes the rest", () => {
    expect(mosquittoUsernameProblem('grafana')).toBeUndefined();
    expect(mosquittoUsernameProblem('node red@home')).toBeUndefined();
    expect(mosquittoUsernameProblem('a:b')).toMatch(/':'/);
    expect(mosquittoUsernameProblem(' grafana')).toMatch(/blank/);
    expect(mosquittoUsernameProblem('#grafana')).toMatch(/'#'/);
    expect(mosquittoUsernameProblem('a\nb')).toMatch(/line break/);
  });
});
