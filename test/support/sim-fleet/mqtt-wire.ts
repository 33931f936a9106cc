/**
 * Just enough MQTT 3.1.1 for a simulated agent: CONNECT (credentials, last will), PUBLISH (QoS 0 and 1),
 * PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT out; CONNACK, SUBACK, PUBLISH, PUBACK, PINGRESP in. A few hundred
 * bytes of state per connection, where an mqtt.js client costs tens of kilobytes: ten thousand of them fit in
 * two processes.
 */

export const PacketType = { connack: 2, publish: 3, puback: 4, suback: 9, pingresp: 13 } as const;

export interface IncomingPacket {
  type: number;
  flags: number;
  body: Buffer;
}

export interface IncomingPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  packetId?: number;
}

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

function packet(firstByte: number, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

function str(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

export interface ConnectOptions {
  clientId: string;
  username: string;
  password: string;
  keepaliveSeconds: number;
  will: { topic: string; payload: string; qos: 0 | 1; retain: boolean };
}

export function connectPacket(o: ConnectOptions): Buffer {
  // username, password, will retain, will QoS, will flag, clean session
  const flags = 0x80 | 0x40 | (o.will.retain ? 0x20 : 0) | (o.will.qos << 3) | 0x04 | 0x02;
  return packet(0x10, [
    str('MQTT'),
    Buffer.from([4, flags]),
    u16(o.keepaliveSeconds),
    str(o.clientId),
    str(o.will.topic),
    str(o.will.payload),
    str(o.username),
    str(o.password),
  ]);
}

export function publishPacket(topic: string, payload: string, qos: 0 | 1 = 0, retain = false, packetId = 1): Buffer {
  return packet(0x30 | (qos << 1) | (retain ? 1 : 0), [str(topic), ...(qos > 0 ? [u16(packetId)] : []), Buffer.from(payload)]);
}

export function pubackPacket(packetId: number): Buffer {
  return Buffer.from([0x40, 2, packetId >> 8, packetId & 0xff]);
}

export function subscribePacket(packetId: number, filters: string[], qos: 0 | 1): Buffer {
  return packet(0x82, [u16(packetId), ...filters.flatMap((f) => [str(f), Buffer.from([qos])])]);
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT = Buffer.from([0xe0, 0]);

/** Splits a byte stream into packets; keeps an incomplete one until the rest arrives. */
export class PacketReader {
  private pending?: Buffer;

  push(chunk: Buffer, onPacket: (p: IncomingPacket) => void): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    for (;;) {
      if (data.length < 2) break;
      let length = 0;
      let multiplier = 1;
      let offset = 1;
      let complete = false;
      while (offset < data.length && offset <= 4) {
        const byte = data[offset++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || data.length < offset + length) break;
      onPacket({ type: data[0]! >> 4, flags: data[0]! & 0x0f, body: data.subarray(offset, offset + length) });
      data = data.subarray(offset + length);
    }
    if (data.length > 0) this.pending = Buffer.from(data);
  }
}

export function parsePublish(p: IncomingPacket): IncomingPublish {
  const topicLength = p.body.readUInt16BE(0);
  const topic = p.body.toString('utf8', 2, 2 + topicLength);
  const qos = (p.flags >> 1) & 3;
  let offset = 2 + topicLength;
  let packetId: number | undefined;
  if (qos > 0) {
    packetId = p.body.readUInt16BE(offset);
    offset += 2;
  }
  return { topic, payload: p.body.subarray(offset), qos, packetId };
}
