/**
 * Help of every command. program.ts defines a group's subcommands only when the group is named on the
 * command line; these check that every command is still reachable and described however help is asked for.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { otto } from './support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otto-cli-help-'));
const run = (...args: string[]) => otto(args, { cwd: dir });

/** Every command of `otto`, by group (help and the hidden control-plane aside). */
const COMMANDS: Record<string, string[]> = {
  cluster: ['init', 'start', 'stop', 'status', 'events', 'plan', 'rebalance', 'check'],
  service: ['ls|list', 'ps', 'scale', 'restart', 'rollback', 'move', 'logs'],
  node: ['list|ls', 'metrics', 'rotate-credentials', 'join-command', 'remove|rm', 'trust', 'install'],
  config: ['validate', 'schema', 'mosquitto'],
};

/** The command names a help text lists under "Commands:". */
function listed(help: string): string[] {
  const section = help.slice(help.indexOf('Commands:'));
  return section
    .split('\n')
    .slice(1)
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== 'help');
}

describe('otto help', () => {
  it('lists every group, and every group lists its commands whichever way help is asked for', async () => {
    const root = await run('--help');
    expect(root.code).toBe(0);
    expect(listed(root.stdout)).toEqual([...Object.keys(COMMANDS), 'agent']);
    for (const [group, commands] of Object.entries(COMMANDS)) {
      const help = await run(group, '--help');
      expect(help.code, group).toBe(0);
      expect(listed(help.stdout), group).toEqual(commands);
      expect((await run('help', group)).stdout, group).toBe(help.stdout);
    }
  });

  it('describes every command, the same through `otto GROUP help`, and suggests the command meant', async () => {
    const checks = Object.entries(COMMANDS).flatMap(([group, commands]) =>
      commands.map(async (names) => {
        const name = names.split('|')[0]!;
        const help = await run(group, name, '--help');
        expect(help.code, `${group} ${name}`).toBe(0);
        expect(help.stdout, `${group} ${name}`).toMatch(new RegExp(`^Usage: otto ${group} ${name}[ |]`));
        expect((await run(group, 'help', name)).stdout, `${group} ${name}`).toBe(help.stdout);
      }),
    );
    await Promise.all(checks);
    const typo = await run('cluster', 'stauts');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('(Did you mean status?)');
  });
});
