/**
 * Handlebars rendering for modules that write files from templates.
 *
 * A template is named `templates/NAME.hbs` relative to the project root (`NAME` or `NAME.hbs`), or given
 * as an absolute path, or passed inline as source text. Templates compile in strict mode: a variable that is
 * not defined is an error naming the template and the variable (helpers such as `{{#if x}}` still accept a
 * missing `x`). Output is not HTML-escaped (these are config files). Compiled templates are cached (a file's
 * cache entry is refreshed when its mtime or size changes).
 *
 * Secrets in the variables are revealed in the content and shown as *** in the display rendering (which
 * is what diffs print).
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createRequire } from 'node:module';
import { Secret } from './secret.ts';

export class TemplateError extends Error {
  override name = 'TemplateError';
}

export interface TemplateOptions {
  /** The project root that holds `templates/` (default: the current directory). */
  root?: string;
}

export interface Rendered {
  /** The text to write (secrets revealed). */
  readonly content: string;
  /** The same text with secrets shown as *** (for diffs and logs). */
  readonly display: string;
  /** Where the template came from: its file path, or "(inline)". */
  readonly source: string;
}

type Compiled = (context: unknown) => string;

const require = createRequire(import.meta.url);
let instance: typeof import('handlebars') | undefined;
/**
 * Handlebars, loaded by the first template compiled: a run that renders none never loads it. Its one-file
 * build (the same compiler and runtime as the package's main) loads in about a third of the time of the main
 * entry's forty files, each of which passes through tsx's require hook.
 */
function hb(): typeof import('handlebars') {
  instance ??= (require('handlebars/dist/handlebars.min.js') as typeof import('handlebars')).create();
  return instance;
}
const fileCache = new Map<string, { mtimeMs: number; size: number; fn: Compiled }>();
const inlineCache = new Map<string, Compiled>();
const INLINE_CACHE_MAX = 500;

/** The file a template name refers to. */
export function templatePath(name: string, options: TemplateOptions = {}): string {
  if (isAbsolute(name)) return name;
  if (name.split(/[\\/]/).includes('..')) throw new TemplateError(`template name must not contain "..": ${name}`);
  const file = name.endsWith('.hbs') ? name : `${name}.hbs`;
  return join(options.root ?? process.cwd(), 'templates', file);
}

function compile(source: string, label: string): Compiled {
  try {
    // Handlebars compiles lazily: parse now so that a syntax error names the template here.
    hb().parse(source);
  } catch (e) {
    throw new TemplateError(`template ${label}: ${(e as Error).message}`);
  }
  return hb().compile(source, { strict: true, noEscape: true });
}

function loadFile(path: string): Compiled {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new TemplateError(`template not found: ${path}`);
  }
  const cached = fileCache.get(path);
  if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.fn;
  const fn = compile(readFileSync(path, 'utf8'), path);
  fileCache.set(path, { mtimeMs: stat.mtimeMs, size: stat.size, fn });
  return fn;
}

function loadInline(source: string): Compiled {
  let fn = inlineCache.get(source);
  if (!fn) {
    fn = compile(source, '(inline)');
    if (inlineCache.size >= INLINE_CACHE_MAX) inlineCache.clear();
    inlineCache.set(source, fn);
  }
  return fn;
}

/** Replace every Secret in a JSON-like value (deeply) by its clear text. */
function revealDeep(value: unknown): unknown {
  if (value instanceof Secret) return value.reveal();
  if (Array.isArray(value)) return value.map(revealDeep);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = revealDeep(v);
    return out;
  }
  return value;
}

function run(fn: Compiled, vars: Readonly<Record<string, unknown>>, label: string): Rendered {
  try {
    return { content: fn(revealDeep(vars)), display: fn(vars), source: label };
  } catch (e) {
    const err = e as Error & { lineNumber?: number; column?: number };
    const m = /^"(.+)" not defined in /.exec(err.message);
    const where = err.lineNumber !== undefined ? ` (line ${err.lineNumber}, column ${(err.column ?? 0) + 1})` : '';
    if (m) throw new TemplateError(`template ${label}: variable "${m[1]}" is not defined${where}`);
    throw new TemplateError(`template ${label}: ${err.message}`);
  }
}

/** Render a named template (templates/NAME.hbs, or an absolute path). */
export function renderTemplate(
  name: string,
  vars: Readonly<Record<string, unknown>>,
  options: TemplateOptions = {},
): Rendered {
  const path = templatePath(name, options);
  return run(loadFile(path), vars, path);
}

/** Render inline template source. */
export function renderSource(source: string, vars: Readonly<Record<string, unknown>>): Rendered {
  return run(loadInline(source), vars, '(inline)');
}
