/**
 * aedes' in-memory persistence, with one change: a subscription to a topic without wildcards finds its
 * retained message by a map lookup. The stock one tests every retained message against every new
 * subscription; each agent subscribes to four topics of its own when it connects, and Otto retains two
 * messages per node (status, desired), so a fleet reconnecting after a restart cost O(nodes^2) matches.
 * Wildcard subscriptions (the control plane's, readers') still take the stock path.
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';

interface RetainedPacket {
  topic: string;
  payload: Buffer;
}

interface MemoryPersistence {
  storeRetained(packet: RetainedPacket): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): Readable;
  createRetainedStream(pattern: string): Readable;
}

type MemoryPersistenceClass = new (options?: object) => MemoryPersistence;

const require = createRequire(import.meta.url);

const hasWildcard = (pattern: string) => pattern.includes('+') || pattern.includes('#');

/** The persistence to hand aedes (`persistence` option). */
export async function indexedMemoryPersistence(): Promise<unknown> {
  const { Readable } = await import('node:stream');
  const Memory = require('aedes-persistence/asyncPersistence.js') as MemoryPersistenceClass;
  const { CallBackPersistence } = require('aedes-persistence/callBackPersistence.js') as {
    CallBackPersistence: new (factory: (options: object) => MemoryPersistence, options?: object) => unknown;
  };

  class IndexedRetained extends Memory {
    /** The same retained packets as the stock store, by topic (shallow copies sharing the payload). */
    private readonly byTopic = new Map<string, RetainedPacket>();

    override async storeRetained(packet: RetainedPacket): Promise<void> {
      await super.storeRetained(packet);
      if (packet.payload.length === 0) this.byTopic.delete(packet.topic);
      else this.byTopic.set(packet.topic, { ...packet });
    }

    override createRetainedStreamCombi(patterns: string[]): Readable {
      if (patterns.some(hasWildcard)) return super.createRetainedStreamCombi(patterns);
      return Readable.from(patterns.flatMap((topic) => this.byTopic.get(topic) ?? []));
    }

    override createRetainedStream(pattern: string): Readable {
      if (hasWildcard(pattern)) return super.createRetainedStream(pattern);
      const packet = this.byTopic.get(pattern);
      return Readable.from(packet ? [packet] : []);
    }
  }

  return new CallBackPersistence((options) => new IndexedRetained(options));
}
