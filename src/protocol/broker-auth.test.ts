import { describe, expect, it } from 'vitest';
import { clientIdAllowed, covers, mayPublish, maySubscribe, mosquittoAcl, ownClientId, type BrokerIdentity } from './broker-auth.js';

const cp: BrokerIdentity = { kind: 'control-plane' };
const a: BrokerIdentity = { kind: 'node', node: 'pi-a' };
const reader: BrokerIdentity = { kind: 'reader', name: 'grafana' };

describe('covers', () => {
  it('follows MQTT wildcard semantics, a wildcard filter only inside a pattern at least as wide', () => {
    expect(covers('otto/#', 'otto/nodes/a/desired')).toBe(true);
    expect(covers('otto/nodes/+/status', 'otto/nodes/a/status')).toBe(true);
    expect(covers('otto/nodes/+/status', 'otto/nodes/+/status')).toBe(true);
    expect(covers('otto/nodes/a/status', 'otto/nodes/+/status')).toBe(false);
    expect(covers('otto/nodes/+/metrics/#', 'otto/nodes/a/metrics')).toBe(true); // '#' matches its parent level too
    expect(covers('otto/nodes/+/metrics/#', 'otto/nodes/a/metrics/node')).toBe(true);
    expect(covers('otto/nodes/+/metrics/#', 'otto/nodes/+/metrics/#')).toBe(true);
    expect(covers('otto/nodes/+/metrics/node', 'otto/nodes/a/metrics/#')).toBe(false);
    expect(covers('otto/nodes/a/state', 'otto/nodes/a/state/x')).toBe(false);
  });
});

describe('broker identities', () => {
  it('a node speaks only for itself: its metrics, status, state and log replies', () => {
    for (const suffix of ['metrics/node', 'metrics/containers', 'status', 'state', 'logs/stream/req-123']) {
      expect(mayPublish(a, `otto/nodes/pi-a/${suffix}`), suffix).toBe(true);
      expect(mayPublish(a, `otto/nodes/pi-b/${suffix}`), suffix).toBe(false);
    }
    expect(mayPublish(a, 'otto/nodes/pi-a/desired')).toBe(false);
    expect(mayPublish(a, 'otto/nodes/pi-b/desired')).toBe(false);
    expect(mayPublish(a, 'otto/logs/req-123')).toBe(false);
  });

  it('a node reads only what is sent to it', () => {
    for (const suffix of ['desired', 'logs/request', 'logs/control', 'secrets']) {
      expect(maySubscribe(a, `otto/nodes/pi-a/${suffix}`), suffix).toBe(true);
      expect(maySubscribe(a, `otto/nodes/pi-b/${suffix}`), suffix).toBe(false);
    }
    expect(maySubscribe(a, 'otto/nodes/+/desired')).toBe(false);
    expect(maySubscribe(a, 'otto/#')).toBe(false);
    expect(maySubscribe(a, '#')).toBe(false);
  });

  it('the control plane tells nodes what to do and reads everything; it never speaks as a node', () => {
    expect(mayPublish(cp, 'otto/nodes/pi-a/desired')).toBe(true);
    expect(mayPublish(cp, 'otto/nodes/pi-a/secrets')).toBe(true);
    expect(mayPublish(cp, 'otto/nodes/pi-a/status')).toBe(false);
    expect(mayPublish(cp, 'otto/nodes/pi-a/metrics/node')).toBe(false);
    expect(maySubscribe(cp, 'otto/#')).toBe(true);
  });

  it('a reader reads metrics and status, nothing else, and publishes nothing', () => {
    expect(maySubscribe(reader, 'otto/nodes/+/metrics/#')).toBe(true);
    expect(maySubscribe(reader, 'otto/nodes/pi-a/metrics/node')).toBe(true);
    expect(maySubscribe(reader, 'otto/nodes/+/status')).toBe(true);
    expect(maySubscribe(reader, 'otto/nodes/+/desired')).toBe(false);
    expect(maySubscribe(reader, 'otto/nodes/pi-a/secrets')).toBe(false);
    expect(maySubscribe(reader, 'otto/#')).toBe(false);
    expect(mayPublish(reader, 'otto/nodes/pi-a/metrics/node')).toBe(false);
  });

  it('no identity may publish to a wildcard', () => {
    expect(mayPublish(cp, 'otto/nodes/+/desired')).toBe(false);
  });

  it("derives each identity's client id from its secret, and lets a node use only its own", () => {
    const own = ownClientId('agent', 'home', 'pi-a', 'secret-of-a');
    expect(own).toMatch(/^otto-agent-home-pi-a-[0-9a-f]{12}$/);
    expect(ownClientId('agent', 'home', 'pi-a', 'another')).not.toBe(own);
    expect(clientIdAllowed(a, own, own)).toBe(true);
    expect(clientIdAllowed(a, `${own}-second`, own)).toBe(true);
    expect(clientIdAllowed(a, 'otto-agent-home-pi-b-000000000000', own)).toBe(false);
    expect(clientIdAllowed(a, 'anything', own)).toBe(false);
    expect(clientIdAllowed(reader, 'grafana-1', undefined)).toBe(true);
    expect(clientIdAllowed(reader, own, undefined)).toBe(false);
    expect(clientIdAllowed(cp, 'whatever', undefined)).toBe(true);
  });

  it('renders the same rules as a Mosquitto ACL', () => {
    const acl = mosquittoAcl(['grafana']);
    expect(acl).toContain('user otto-control-plane\ntopic deny otto/nodes/otto-control-plane/#\ntopic read otto/#\ntopic write otto/nodes/+/desired');
    expect(acl).toContain('user grafana\ntopic deny otto/nodes/grafana/#\ntopic read otto/nodes/+/metrics/#\ntopic read otto/nodes/+/status');
    expect(acl).toContain('pattern write otto/nodes/%u/metrics/node');
    expect(acl).toContain('pattern read otto/nodes/%u/desired');
    expect(acl).not.toMatch(/pattern (read|write) otto\/nodes\/\+/);
  });
});
