/**
 * The one error hierarchy of Otto. Every failure a user can meet is one of these; each carries the exit
 * code the CLI returns and a hint telling the user what to do next. The CLI's top level is the only place
 * that turns them into output.
 */
export const ExitCode = { ok: 0, badInput: 1, infrastructure: 2, internal: 3 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class OttoError extends Error {
  abstract readonly exitCode: ExitCode;
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command-line arguments. */
export class UsageError extends OttoError {
  readonly exitCode = ExitCode.badInput;
}

/** An invalid otto.yaml; `issues` holds every problem found, one line each. */
export class ConfigError extends OttoError {
  readonly exitCode = ExitCode.badInput;
  constructor(
    readonly issues: string[],
    hint = 'fix the file and run `otto config validate` again',
  ) {
    super(issues[0] ?? 'invalid configuration', hint);
  }
}

/** A service, node or operation named by the user does not exist (HTTP 404). */
export class NotFoundError extends OttoError {
  readonly exitCode = ExitCode.badInput;
}

/** Docker, MQTT, SSH, the control plane or a node could not be reached, or an operation failed. */
export class InfrastructureError extends OttoError {
  readonly exitCode = ExitCode.infrastructure;
}

/** A bug in Otto. */
export class InternalError extends OttoError {
  readonly exitCode = ExitCode.internal;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
