import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { containerSpecOf, splitCommand } from './container-spec.js';

describe('splitCommand', () => {
  it('splits like Compose: spaces, single and double quotes, backslashes', () => {
    expect(splitCommand('redis-server --appendonly yes')).toEqual(['redis-server', '--appendonly', 'yes']);
    expect(splitCommand(`sh -c 'while true; do echo "hi there"; sleep 5; done'`)).toEqual(['sh', '-c', 'while true; do echo "hi there"; sleep 5; done']);
    expect(splitCommand('echo "a \\"b\\"" c\\ d ""')).toEqual(['echo', 'a "b"', 'c d', '']);
  });
});

describe('containerSpecOf', () => {
  it('resolves a service into what the agent runs', () => {
    const config = parseConfig(
      `nodes: [{ id: local, host: localhost }]
services:
  - name: web
    image: nginx
    command: nginx -g 'daemon off;'
    ports: ["127.0.0.1:8080:80", "53:53/udp"]
    environment: ["A=1", "B"]
    healthcheck: { test: "curl -f localhost", interval: 10s, timeout: 2s, retries: 4, start_period: 1m }
    cpus: 0.5
    memory: 256m
`,
      'otto.yaml',
    );
    expect(containerSpecOf(config.services[0]!)).toEqual({
      image: 'nginx',
      command: ['nginx', '-g', 'daemon off;'],
      env: { A: '1', B: '' },
      ports: [
        { host_ip: '127.0.0.1', host_port: 8080, container_port: 80, protocol: 'tcp' },
        { host_port: 53, container_port: 53, protocol: 'udp' },
      ],
      volumes: [],
      restart: 'unless-stopped',
      labels: {},
      healthcheck: { test: ['CMD-SHELL', 'curl -f localhost'], interval_ms: 10_000, timeout_ms: 2_000, retries: 4, start_period_ms: 60_000 },
      nano_cpus: 500_000_000,
      memory_bytes: 256 * 1024 * 1024,
    });
  });
});

describe('stop and init settings', () => {
  it('carries init, stop_signal (normalized) and stop_grace_period, and leaves them out when not set', () => {
    const config = parseConfig(
      `nodes:\n  - { id: a, host: localhost }\nservices:\n  - { name: db, image: x, init: true, stop_signal: INT, stop_grace_period: 1m30s }\n  - { name: plain, image: x }\n`,
      'otto.yaml',
    );
    expect(containerSpecOf(config.services[0]!)).toMatchObject({ init: true, stop_signal: 'SIGINT', stop_grace_ms: 90_000 });
    const plain = containerSpecOf(config.services[1]!);
    expect(plain.init).toBeUndefined();
    expect(plain.stop_signal).toBeUndefined();
    expect(plain.stop_grace_ms).toBeUndefined();
  });
});
