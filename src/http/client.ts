/**
 * The CLI's side of the control plane API: finds the running control plane from `.otto/`, calls it
 * with the token, validates the answer.
 */
import type { z } from 'zod';
import { InfrastructureError, errorMessage } from '../errors.js';
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

  async get<T>(path: string, schema: z.ZodType<T>): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, { headers: { authorization: `Bearer ${this.token}` } });
    } catch (err) {
      throw new InfrastructureError(`control plane at ${this.baseUrl} unreachable: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`, 'is the cluster running? try `otto cluster start`');
    }
    const body = (await response.json().catch(() => undefined)) as { error?: string; hint?: string } | undefined;
    if (!response.ok) {
      throw new InfrastructureError(`control plane: ${response.status} ${body?.error ?? response.statusText}`, body?.hint);
    }
    return schema.parse(body);
  }

  async healthy(): Promise<boolean> {
    try {
      return (await fetch(`${this.baseUrl}/healthz`)).ok;
    } catch {
      return false;
    }
  }
}
