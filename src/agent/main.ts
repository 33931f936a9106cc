#!/usr/bin/env node
/**
 * Entry point of the one-file agent bundle (scripts/bundle-agent.mjs): only `agent`, so a node loads the
 * agent and nothing of the control plane or the rest of the CLI.
 */
import { Command } from 'commander';
import { addAgentCommand } from '../cli/agent-command.js';
import { addGlobalOptions } from '../cli/options.js';
import { runProgram } from '../cli/run.js';
import { OTTO_VERSION } from '../version.js';

const program = addGlobalOptions(new Command('otto-agent')).version(OTTO_VERSION, '-v, --version').exitOverride();
addAgentCommand(program);
void runProgram(program);
