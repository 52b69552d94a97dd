/**
 * The command line every playbook shares:
 *
 *   npx tsx playbooks/NAME.ts [-i INVENTORY] [--check] [--diff] [--limit PATTERN] [--tags T] [--skip-tags T]
 *                             [--forks N] [--json] [-v] [--help]
 *
 * A playbook file ends with `await runIfMain(book, import.meta.url)`: run as a program it parses argv and
 * exits with the run's code; imported from a user's script it does nothing.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { UserError } from './errors.ts';
import type { Reporter } from './events.ts';
import { loadInventory, type Inventory } from './inventory.ts';
import { isPlaybookFactory, type Playbook, type PlaybookFactory } from './playbook.ts';
import { JsonReporter } from './report/json.ts';
import { ListrReporter } from './report/listr.ts';
import { PlainReporter } from './report/plain.ts';
import { runPlaybook } from './runner.ts';
import { maskSecrets } from './secret.ts';

export interface CliOptions {
  inventory: string | undefined;
  check: boolean;
  diff: boolean;
  limit: string | undefined;
  tags: string[];
  skipTags: string[];
  forks: number;
  json: boolean;
  verbose: number;
  help: boolean;
}

const list = (values: readonly string[] | undefined): string[] =>
  (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        inventory: { type: 'string', short: 'i' },
        check: { type: 'boolean', short: 'C' },
        diff: { type: 'boolean', short: 'D' },
        limit: { type: 'string', short: 'l' },
        tags: { type: 'string', short: 't', multiple: true },
        'skip-tags': { type: 'string', multiple: true },
        forks: { type: 'string', short: 'f' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message.replace(/\. To specify.*$/s, '')} (see --help)`);
  }
  const v = parsed.values;
  const forks = v.forks === undefined ? 20 : Number(v.forks);
  if (!Number.isInteger(forks) || forks < 1 || forks > 10_000) {
    throw new UserError(`--forks must be a whole number from 1 to 10000, not "${v.forks}"`);
  }
  return {
    inventory: v.inventory,
    check: v.check ?? false,
    diff: v.diff ?? false,
    limit: v.limit,
    tags: list(v.tags),
    skipTags: list(v['skip-tags']),
    forks,
    json: v.json ?? false,
    verbose: v.verbose?.length ?? 0,
    help: v.help ?? false,
  };
}

export function helpText(book: Playbook | PlaybookFactory, program: string): string {
  return `${book.name}${book.description ? `: ${book.description}` : ''}

usage: npx tsx ${program} [options]

  -i, --inventory FILE   inventory (YAML, JSON or TS)${book.defaultInventory ? `; default ${book.defaultInventory}` : ''}
  -C, --check            dry run: print each task's plan, change nothing
  -D, --diff             show before/after of files and settings
  -l, --limit PATTERN    only these hosts (groups, globs, a:b, &x, !x)
  -t, --tags T[,T]       only tasks with these tags
      --skip-tags T[,T]  skip tasks with these tags
  -f, --forks N          hosts worked on at once (default 20)
      --json             JSON lines instead of progress
  -v, --verbose          show commands (-vv: each command as it runs)
  -h, --help             this help

${isPlaybookFactory(book) ? 'plays: built from the inventory (their tasks depend on its hosts)' : `plays:\n${book.plays.map((p, i) => `  ${i + 1}. ${p.name} [${p.hosts}] (${p.tasks.length} tasks)`).join('\n')}`}

exit codes: 0 ok, 1 bad input, 2 a task failed, 4 a host was unreachable, 130 interrupted
`;
}

/**
 * JSON lines when asked; listr2 on a terminal; plain lines otherwise, and on a terminal that reports no width
 * (script(1) without a size, some CI pseudo-terminals): listr2 wraps at the width, one character a line at 0.
 */
export function chooseReporter(options: CliOptions, isTTY: boolean, columns = process.stdout.columns ?? 0): Reporter {
  if (options.json) return new JsonReporter();
  if (isTTY && columns >= 20) return new ListrReporter({ diff: options.diff, verbose: options.verbose });
  return new PlainReporter({ diff: options.diff, verbose: options.verbose });
}

/** A factory reads the inventory to build its plays: what it refuses is the inventory's, so name the file. */
function buildFrom(factory: PlaybookFactory, inventory: Inventory, file: string): Playbook {
  try {
    return factory.build(inventory);
  } catch (e) {
    throw e instanceof UserError && e.where.file === undefined ? e.at({ file }) : e;
  }
}

let currentRun: AbortController | undefined;
let outputWatched = false;

/** Run a playbook from command-line arguments; returns the exit code. */
export async function main(source: Playbook | PlaybookFactory, argv: readonly string[] = process.argv.slice(2), program = 'playbook.ts'): Promise<number> {
  try {
    const options = parseCli(argv);
    if (options.help) {
      process.stdout.write(helpText(source, program));
      return 0;
    }
    const path = options.inventory ?? source.defaultInventory;
    if (path === undefined) throw new UserError('no inventory given: use -i FILE');
    const inventory = await loadInventory(path);
    const book = isPlaybookFactory(source) ? buildFrom(source, inventory, path) : source;
    // Ctrl-C once: finish the running task, start no other, print the recap. Twice: stop at once.
    const abort = new AbortController();
    const onInterrupt = (): void => {
      if (abort.signal.aborted) process.exit(130);
      process.stderr.write('\ninterrupted: finishing the running task (Ctrl-C again to stop at once)\n');
      abort.abort();
    };
    process.on('SIGINT', onInterrupt);
    // The reader of our output went away (`... --json | head`): stop as after Ctrl-C (no task starts, the running
    // ones finish), without a word, since no one is reading. Node would otherwise die of an unhandled EPIPE.
    // One listener for the process's life (a write may fail after the run): it stops the current run.
    currentRun = abort;
    if (!outputWatched) {
      process.stdout.on('error', () => {
        if (currentRun && !currentRun.signal.aborted) currentRun.abort();
      });
      outputWatched = true;
    }
    const summary = await runPlaybook(book, {
      signal: abort.signal,
      inventory,
      check: options.check,
      diff: options.diff,
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      tags: options.tags,
      skipTags: options.skipTags,
      forks: options.forks,
      reporters: [chooseReporter(options, process.stdout.isTTY === true)],
    }).finally(() => {
      // Also when the run is refused (bad params): a caller that runs main() again must not pile up listeners.
      process.off('SIGINT', onInterrupt);
    });
    return summary.exitCode;
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`error: ${maskSecrets(e.message)}\n`);
      return 1;
    }
    process.stderr.write(`internal error (a bug, please report it): ${maskSecrets((e as Error).stack ?? String(e))}\n`);
    return 3;
  }
}

/** True when the module at `metaUrl` is the program being run (not imported). */
export function isMain(metaUrl: string): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** End a playbook file with this: runs the CLI only when the file is the program. */
export async function runIfMain(book: Playbook | PlaybookFactory, metaUrl: string): Promise<void> {
  if (!isMain(metaUrl)) return;
  const program = process.argv[1] ? process.argv[1].replace(`${process.cwd()}/`, '') : 'playbook.ts';
  process.exitCode = await main(book, process.argv.slice(2), program);
}
