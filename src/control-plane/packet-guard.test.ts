import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { PacketSizeGuard } from './packet-guard.js';

const publish = (bytes: number) => mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(bytes), qos: 0, retain: false, dup: false });

describe('PacketSizeGuard', () => {
  it('lets packets up to the limit through, however the bytes are split', () => {
    const guard = new PacketSizeGuard(1_000);
    const stream = Buffer.concat([publish(10), publish(900), mqttPacket.generate({ cmd: 'pingreq' }), publish(0)]);
    for (let i = 0; i < stream.length; i += 7) expect(guard.push(stream.subarray(i, i + 7))).toBeUndefined();
  });

  it('says so as soon as a header announces more than the limit, before the body arrives', () => {
    const guard = new PacketSizeGuard(1_000);
    expect(guard.push(publish(100))).toBeUndefined();
    const big = publish(10 * 1024 * 1024);
    // Only the first 5 bytes: the fixed header with its 4-byte length.
    expect(guard.push(big.subarray(0, 5))).toBe(10 * 1024 * 1024 + 3);
  });
});
