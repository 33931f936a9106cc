import { createRequire } from 'node:module';

/** Otto's version, from package.json: agents report it, and a newer Otto replaces an older agent. */
export const OTTO_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
