/**
 * The CLI's side of the control plane API: finds the running control plane from `.otto/`, calls it
 * with the token, validates the answer (answers.ts: without loading zod when it is well formed). Over
 * HTTPS (http.tls) it trusts the cluster's own CA (.otto/tls/ca.pem) besides the system's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfrastructureError, UsageError, errorMessage } from '../errors.js';
import { isProcessAlive, type Workspace } from '../workspace.js';
import type { AnswerParser } from './answers.js';

interface Answer {
  status: number;
  body: string;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    /** CA certificates (PEM) an HTTPS API is verified with. */
    private readonly ca?: string[],
  ) {}

  /** The client of the running control plane, or undefined when none runs. */
  static async connect(workspace: Workspace): Promise<ApiClient | undefined> {
    const info = await workspace.readControlPlane();
    if (!info || !isProcessAlive(info.pid)) return undefined;
    const ownCa = join(workspace.tlsDir, 'ca.pem');
    // TLS is loaded only for an HTTPS API: the CLI's start-up is felt on every command.
    const ca = info.api_url.startsWith('https:') && existsSync(ownCa) ? [...(await import('node:tls')).rootCertificates, readFileSync(ownCa, 'utf8')] : undefined;
    return new ApiClient(info.api_url, await workspace.token(), ca);
  }

  /** `answer`: one of `answers` (answers.ts), or a zod schema. */
  get<T>(path: string, answer: AnswerParser<T>): Promise<T> {
    return this.request('GET', path, answer);
  }

  post<T>(path: string, body: unknown, answer: AnswerParser<T>): Promise<T> {
    return this.request('POST', path, answer, body);
  }

  private async send(method: string, path: string, headers: Record<string, string>, body?: string, timeoutMs = 30_000): Promise<Answer> {
    const url = new URL(`${this.baseUrl}${path}`);
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, timeout: timeoutMs, ...(this.ca ? { ca: this.ca } : {}) }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer in time')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private async request<T>(method: string, path: string, parser: AnswerParser<T>, body?: unknown): Promise<T> {
    let response: Answer;
    try {
      const json = body === undefined ? undefined : JSON.stringify(body);
      response = await this.send(method, path, { authorization: `Bearer ${this.token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) }, json);
    } catch (err) {
      throw new InfrastructureError(`control plane at ${this.baseUrl} unreachable: ${errorMessage(err)}`, 'is the cluster running? try `otto cluster start`');
    }
    let answer: { error?: string; hint?: string } | undefined;
    try {
      answer = JSON.parse(response.body) as typeof answer;
    } catch {
      answer = undefined;
    }
    if (response.status === 404 || response.status === 400) {
      throw new UsageError(answer?.error ?? `HTTP ${response.status}`, answer?.hint);
    }
    if (response.status < 200 || response.status >= 300) {
      throw new InfrastructureError(`control plane: ${response.status} ${answer?.error ?? ''}`.trim(), answer?.hint);
    }
    return parser.parse(answer);
  }

  async healthy(): Promise<boolean> {
    try {
      return (await this.send('GET', '/healthz', {}, undefined, 5_000)).status === 200;
    } catch {
      return false;
    }
  }
}
