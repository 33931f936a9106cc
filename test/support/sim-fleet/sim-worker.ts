/**
 * A child process of `npm run bench:fleet` running one share of the simulated nodes (sim-fleet.ts), so the
 * fleet uses every core. Driven over IPC: `start` (the options), `kill` (node ids), `stats`, `stop`.
 */
import { SimFleet, type SimFleetOptions } from './sim-fleet.js';

type Command = { type: 'start'; options: SimFleetOptions } | { type: 'kill'; ids: string[] } | { type: 'stats' } | { type: 'stop' };

let fleet: SimFleet | undefined;

process.on('message', (command: Command) => {
  switch (command.type) {
    case 'start':
      fleet = new SimFleet(command.options);
      fleet.start();
      process.send!({ type: 'started' });
      return;
    case 'kill':
      fleet?.kill(command.ids);
      process.send!({ type: 'killed' });
      return;
    case 'stats':
      process.send!({ type: 'stats', stats: fleet?.snapshot() });
      return;
    case 'stop':
      fleet?.stop();
      process.send!({ type: 'stopped' }, () => process.exit(0));
      return;
  }
});
process.on('disconnect', () => process.exit(0));
