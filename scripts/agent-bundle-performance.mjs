// Injected into the one-file agent (scripts/bundle-agent.mjs) wherever a dependency reads the global
// `performance` (lru-cache, in mqtt.js, at load): Node's own loads perf_hooks, ten modules and about 0.3 MB of
// the agent's RSS, for a clock that process.hrtime gives as well.
import { monotonicMs } from '../dist/agent/monotonic-clock.js';

const started = monotonicMs();
export const performance = { timeOrigin: Date.now(), now: () => monotonicMs() - started };
