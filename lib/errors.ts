/**
 * Errors that are the user's to fix (bad inventory, bad params, bad CLI flags). They print as one clear
 * message naming where (file, host, task, field) and never with a stack trace; the CLI exits 1 and nothing
 * runs on any host.
 */
export interface Where {
  file?: string;
  host?: string;
  group?: string;
  task?: string;
  /** The module whose params are wrong. */
  module?: string;
  field?: string;
}

export class UserError extends Error {
  override name = 'UserError';
  constructor(
    /** The message without the place. */
    readonly detail: string,
    readonly where: Where = {},
  ) {
    super(formatWhere(where) + detail);
  }

  /** The same error, placed more precisely (the caller knows the host, the task, the file). */
  at(where: Where): UserError {
    return new UserError(this.detail, { ...where, ...this.where });
  }
}

function formatWhere(where: Where): string {
  const parts: string[] = [];
  if (where.file !== undefined) parts.push(where.file);
  if (where.group !== undefined) parts.push(`group ${where.group}`);
  if (where.host !== undefined) parts.push(`host ${where.host}`);
  if (where.task !== undefined) parts.push(`task "${where.task}"${where.module !== undefined ? ` (${where.module})` : ''}`);
  else if (where.module !== undefined) parts.push(`${where.module} params`);
  if (where.field !== undefined) parts.push(`field ${where.field}`);
  return parts.length > 0 ? `${parts.join(', ')}: ` : '';
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

/** Many problems as one error (the first 30 listed). */
export function combineErrors(problems: readonly UserError[]): UserError {
  const first = problems[0];
  if (problems.length === 1 && first) return first;
  const shown = problems.slice(0, 30).map((p) => p.message);
  if (problems.length > shown.length) shown.push(`... and ${problems.length - shown.length} more`);
  return new UserError(`${problems.length} errors:\n  - ${shown.join('\n  - ')}`);
}
