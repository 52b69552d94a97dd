/** JSON lines: one event per line, for machines (--json). Secrets are already masked in events. */
import type { Reporter, RunEvent } from '../events.ts';

export class JsonReporter implements Reporter {
  readonly #write: (text: string) => void;

  constructor(write: (text: string) => void = (t) => process.stdout.write(t)) {
    this.#write = write;
  }

  onEvent(e: RunEvent): void {
    this.#write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
  }

  async done(): Promise<void> {}
}
