import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseConfig } from './load.js';

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, 'otto.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the config to be rejected');
}

const node = 'nodes:\n  - { id: local, host: localhost }\n';
const service = (secrets: string) => `services:\n  - name: app\n    image: busybox\n    secrets: ${secrets}\n`;

describe('secrets and registries in otto.yaml', () => {
  it('accepts a secret from a file or from the environment, and a registry password the same ways', () => {
    const config = parseConfig(
      `${node}secrets:
  db: { file: ./db.txt }
  token: { environment: API_TOKEN }
registries:
  ghcr.io: { username: me, password: { environment: GHCR_TOKEN } }
  127.0.0.1:5000: { username: me, password: { file: pw.txt } }
${service('[db, token]')}`,
      'otto.yaml',
      {},
    );
    expect(config.secrets).toEqual({ db: { file: './db.txt' }, token: { environment: 'API_TOKEN' } });
    expect(config.services[0]!.secrets).toEqual(['db', 'token']);
    expect(Object.keys(config.registries)).toEqual(['ghcr.io', '127.0.0.1:5000']);
  });

  it('refuses a value written inline, as a string or as `value`, with the way out', () => {
    expect(issuesOf(`${node}secrets:\n  db: hunter2\n`)).toEqual([
      'otto.yaml:4:7 secrets.db: a secret\'s value is never written in otto.yaml: give {file: PATH} (relative to otto.yaml) or {environment: VAR} (of the control plane)',
    ]);
    expect(issuesOf(`${node}secrets:\n  db: { value: hunter2 }\n`)).toEqual([
      expect.stringMatching(/^otto\.yaml:4:16 secrets\.db\.value: a secret's value is never written in otto\.yaml: give \{file: PATH\}/),
    ]);
    expect(issuesOf(`${node}registries:\n  ghcr.io: { username: me, password: hunter2 }\n`)[0]).toMatch(
      /^otto\.yaml:4:38 registries\["ghcr\.io"\]\.password: a registry password is never written in otto\.yaml: give \{file: PATH\}/,
    );
  });

  it('wants exactly one source', () => {
    expect(issuesOf(`${node}secrets:\n  db: { file: a, environment: B }\n`)).toEqual(['otto.yaml:4:7 secrets.db: expected exactly one of "file" or "environment"']);
    expect(issuesOf(`${node}secrets:\n  db: { fil: a }\n`)).toEqual([
      'otto.yaml:4:7 secrets.db: expected exactly one of "file" or "environment"',
      'otto.yaml:4:9 secrets.db.fil: unknown key (did you mean "file"?)',
    ]);
  });

  it('names an unknown secret of a service where it is, with a suggestion', () => {
    expect(issuesOf(`${node}secrets:\n  db_password: { file: a }\n${service('[db_pasword]')}`)).toEqual([
      'otto.yaml:8:15 services[0].secrets[0]: unknown secret "db_pasword", did you mean "db_password"? (secrets: db_password)',
    ]);
    expect(issuesOf(`${node}${service('[db]')}`)).toEqual([
      'otto.yaml:6:15 services[0].secrets[0]: unknown secret "db": define it under the top-level "secrets" (db: {file: PATH})',
    ]);
    expect(issuesOf(`${node}secrets:\n  db: { file: a }\n${service('[db, db]')}`)).toEqual([
      'otto.yaml:8:19 services[0].secrets[1]: secret "db" is listed twice (first at otto.yaml:8:15)',
    ]);
  });

  it('refuses names that are no file name, and registry keys that are no host', () => {
    expect(issuesOf(`${node}secrets:\n  ../etc/passwd: { file: a }\n`)[0]).toMatch(/secrets\["\.\.\/etc\/passwd"\]: a secret name is letters, digits/);
    expect(issuesOf(`${node}registries:\n  https://ghcr.io: { username: me, password: { file: a } }\n`)[0]).toMatch(
      /registries\["https:\/\/ghcr\.io"\]: expected a registry host such as "ghcr\.io" or "127\.0\.0\.1:5000" \(no scheme, no path\)/,
    );
    expect(issuesOf(`${node}registries:\n  docker.io: { username: a, password: { file: a } }\n  index.docker.io: { username: b, password: { file: b } }\n`)[0]).toMatch(
      /^otto\.yaml:5:3 registries\["index\.docker\.io"\]: the same registry as "docker\.io" \(first at otto\.yaml:4:14\); keep one/,
    );
  });
});
