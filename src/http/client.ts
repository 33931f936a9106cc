/**
 * The CLI's side of the control plane API: finds the running control plane from `.otto/`, calls it
 * with the token, validates the answer.
 */
import type { z } from 'zod';
import { InfrastructureError, UsageError, errorMessage } from '../errors.js';
import { isProcessAlive, type Workspace } from '../workspace.js';

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  /** The client of the running control plane, or undefined when none runs. */
  static async connect(workspace: Workspace): Promise<ApiClient | undefined> {
    const info = await workspace.readControlPlane();
    if (!info || !isProcessAlive(info.pid)) return undefined;
    return new ApiClient(info.api_url, await workspace.token());
  }

  get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    return this.request('GET', path, schema);
  }

  post<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    return this.request('POST', path, schema, body);
  }

  private async request<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new InfrastructureError(`control plane at ${this.baseUrl} unreachable: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`, 'is the cluster running? try `otto cluster start`');
    }
    const answer = (await response.json().catch(() => undefined)) as { error?: string; hint?: string } | undefined;
    if (response.status === 404 || response.status === 400) {
      throw new UsageError(answer?.error ?? `${response.status} ${response.statusText}`, answer?.hint);
    }
    if (!response.ok) {
      throw new InfrastructureError(`control plane: ${response.status} ${answer?.error ?? response.statusText}`, answer?.hint);
    }
    return schema.parse(answer);
  }

  async healthy(): Promise<boolean> {
    try {
      return (await fetch(`${this.baseUrl}/healthz`)).ok;
    } catch {
      return false;
    }
  }
}
