/**
 * Atomic file writes as one command: the content goes on stdin to a temp file created next to the target,
 * which gets its mode and owner before it is renamed over the target. A reader never sees half a file, and
 * an interrupted write leaves the old file in place (the trap removes the temp file): the temp file replaces the
 * target only if it holds every byte sent.
 */
import { Command, QuoteError, raw, sh } from '../command.ts';
import type { ExecResult, PutOptions } from './types.ts';

export function modeString(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new QuoteError(`invalid file mode ${mode}`);
  return mode.toString(8).padStart(4, '0');
}

export function putCommand(path: string, content: string | Uint8Array, options: PutOptions = {}): Command {
  if (!path.startsWith('/')) throw new QuoteError(`put: the path must be absolute: ${path}`);
  const template = `${path}.sanbook.XXXXXX`;
  const chmod =
    options.mode !== undefined
      ? sh`chmod ${modeString(options.mode)} "$tmp"`
      : sh`if [ -e ${path} ]; then chmod --reference=${path} "$tmp"; else chmod 0644 "$tmp"; fi`;
  const ownerSpec =
    options.owner !== undefined || options.group !== undefined
      ? `${options.owner ?? ''}${options.group !== undefined ? `:${options.group}` : ''}`
      : undefined;
  const chown =
    ownerSpec !== undefined
      ? sh`chown ${ownerSpec} "$tmp"`
      : sh`if [ -e ${path} ]; then chown --reference=${path} "$tmp" 2>/dev/null || :; fi`;
  const size = typeof content === 'string' ? Buffer.byteLength(content, 'utf8') : content.byteLength;
  // A controller that dies mid-write (killed, a second Ctrl-C, the network gone) closes the channel: cat sees
  // the end of its input and succeeds with part of the content. Only the whole content may replace the file.
  // A write to the closed channel must not kill the shell before its EXIT trap removes the temp file (SIGPIPE
  // ignored), nor may a hangup or a kill by `timeout` (HUP, TERM: exit, so the trap runs).
  const script = sh`tmp=$(mktemp -- ${template}) || exit 1
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
trap '' PIPE
cat > "$tmp" || exit 1
got=$(stat -c %s -- "$tmp") || exit 1
if [ "$got" != ${String(size)} ]; then echo "only $got of ${String(size)} bytes arrived (the connection broke?): the file is left as it was" >&2; exit 1; fi
${chmod} || exit 1
${chown} || exit 1
mv -f -- "$tmp" ${path} || exit 1
trap - EXIT${raw('')}`;
  return script.with({ stdin: content });
}

/** put() for any connection: one exec of putCommand; a failure throws, naming the path and the host. */
export async function putWith(
  exec: (command: Command) => Promise<ExecResult>,
  host: string,
  path: string,
  content: string | Uint8Array,
  options: PutOptions = {},
): Promise<void> {
  const r = await exec(putCommand(path, content, options));
  if (r.exitCode !== 0) throw new Error(`cannot write ${path} on ${host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
}
