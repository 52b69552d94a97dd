/**
 * A view of a connection with other defaults for one task (its own become, its own command timeout), sharing
 * the one underlying connection.
 */
import type { Command } from '../command.ts';
import { putWith } from './put.ts';
import type { Connection, ExecOptions, ExecResult, PutOptions } from './types.ts';

export interface ScopeOptions {
  become?: boolean | string;
  timeoutMs?: number;
}

/** A command's options under a scope: what the call gives, else the scope's. */
export function inScope(scope: ScopeOptions, options: ExecOptions = {}): ExecOptions {
  return {
    ...(scope.become !== undefined ? { become: scope.become } : {}),
    ...(scope.timeoutMs !== undefined ? { timeoutMs: scope.timeoutMs } : {}),
    ...options,
  };
}

export function scoped(conn: Connection, scope: ScopeOptions): Connection {
  if (scope.become === undefined && scope.timeoutMs === undefined) return conn;
  const exec = (command: Command, options: ExecOptions = {}): Promise<ExecResult> => conn.exec(command, inScope(scope, options));
  return {
    host: conn.host,
    get commandCount() {
      return conn.commandCount;
    },
    exec,
    async put(path: string, content: string | Uint8Array, options: PutOptions = {}): Promise<void> {
      await putWith(exec, conn.host, path, content, options);
    },
    close: () => conn.close(),
  };
}
