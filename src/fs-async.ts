/**
 * The promise-returning file functions the agent's code uses, made from node:fs's callbacks: node:fs/promises
 * loads readline, file watchers and directory streams along with it, 0.4 MB of an agent's RSS on a Pi (npm run
 * bench:agent). Code only the control plane or the CLI runs uses node:fs/promises as usual.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';

export const access = promisify(fs.access);
export const chmod = promisify(fs.chmod);
export const chown = promisify(fs.chown);
export const close = promisify(fs.close);
export const fsync = promisify(fs.fsync);
export const mkdir = promisify(fs.mkdir);
export const open = promisify(fs.open);
export const readdir = promisify(fs.readdir);
export const readFile = promisify(fs.readFile);
export const rename = promisify(fs.rename);
export const rm = promisify(fs.rm);
export const statfs = promisify(fs.statfs);
export const writeFile = promisify(fs.writeFile);
