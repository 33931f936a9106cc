import { describe, expect, it } from 'vitest';
import { parsePortSpec } from './ports.js';

describe('parsePortSpec', () => {
  it.each([
    ['8080:80', { host_port: 8080, container_port: 80, protocol: 'tcp' }],
    ['8080:80/tcp', { host_port: 8080, container_port: 80, protocol: 'tcp' }],
    ['53:53/udp', { host_port: 53, container_port: 53, protocol: 'udp' }],
    ['127.0.0.1:8080:80', { host_ip: '127.0.0.1', host_port: 8080, container_port: 80, protocol: 'tcp' }],
    ['[::1]:8080:80/udp', { host_ip: '::1', host_port: 8080, container_port: 80, protocol: 'udp' }],
  ])('reads %s', (spec, mapping) => {
    expect(parsePortSpec(spec)).toEqual(mapping);
  });

  it.each([
    [80, 'expected "HOST:CONTAINER[/PROTO]" such as "8080:80"'],
    ['80', 'expected "HOST:CONTAINER[/PROTO]" such as "8080:80"'],
    ['1:2:3:4', 'expected "HOST:CONTAINER[/PROTO]" such as "8080:80"'],
    ['80:99999', 'container port 99999 is out of range 1-65535'],
    ['0:80', 'host port 0 is out of range 1-65535'],
    ['web:80', 'host port "web" is not a number'],
    [':80', 'missing host port; expected "HOST:CONTAINER[/PROTO]" such as "8080:80"'],
    ['8080:80/sctp', 'unsupported protocol "sctp" (expected tcp or udp)'],
    ['8080:80/tcp/udp', 'expected "HOST:CONTAINER[/PROTO]" such as "8080:80"'],
    ['999.0.0.1:8080:80', '"999.0.0.1" is not an IP address'],
    ['8000-8010:8000-8010', 'port ranges such as "8000-8010" are not supported; list each port'],
  ])('rejects %s', (spec, reason) => {
    expect(() => parsePortSpec(spec)).toThrow(new Error(reason));
  });
});
