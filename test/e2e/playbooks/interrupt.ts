/**
 * For test/e2e/faults.test.ts: a run to be interrupted. Each host writes a first file, then a big one (the
 * task running when the test interrupts), then a last file that must never be written after an interrupt.
 * SANBOOK_TEST_BIG_MB sets the big file's size.
 */
import { play, playbook, runIfMain, type TaskContext } from '../../../lib/index.ts';
import { command, copy } from '../../../modules/index.ts';

const root = (ctx: TaskContext): string => ctx.vars['root'] as string;
const big = 'x'.repeat(Number(process.env['SANBOOK_TEST_BIG_MB'] ?? '1') << 20);

export const interrupt = playbook({
  name: 'interrupt',
  plays: [
    play({
      name: 'write three files',
      hosts: 'all',
      tasks: [
        copy.task('first file', (ctx) => ({ path: `${root(ctx)}/first`, content: 'first\n' })),
        command.task('a pause', { argv: ['sleep', '1'] }),
        copy.task('big file', (ctx) => ({ path: `${root(ctx)}/big`, content: big })),
        copy.task('last file', (ctx) => ({ path: `${root(ctx)}/last`, content: 'last\n' })),
      ],
    }),
  ],
});

await runIfMain(interrupt, import.meta.url);
