/**
 * A playbook that handles secrets every way a playbook can: a CHAP secret from the inventory (!secret) written
 * by `setting` into an iscsid.conf-style file, a Secret as a whole file's content (copy), a secret on a command's
 * stdin and in its argv, a failing command whose argv holds the secret, and a failing write whose path holds it.
 * test/e2e/secrets.test.ts runs it through the CLI in every output mode and greps everything for the secrets.
 */
import { play, playbook, runIfMain, secret, type Secret, type TaskContext } from '../../../lib/index.ts';
import { command, copy, file, setting } from '../../../modules/index.ts';

const root = (ctx: TaskContext): string => ctx.vars['root'] as string;
const chap = (ctx: TaskContext): Secret => ctx.vars['chap_secret'] as Secret;
const TOKEN = secret(process.env['SANBOOK_TEST_TOKEN'] ?? 'token-not-set');

export const secrets = playbook({
  name: 'secrets',
  varsSchema: {
    type: 'object',
    required: ['root', 'chap_secret'],
    properties: {
      root: { type: 'string', pattern: '^/', description: 'where this host keeps its files' },
      chap_secret: { secret: { minLength: 12 }, description: 'the CHAP secret' },
    },
  },
  plays: [
    play({
      name: 'secrets on every host',
      hosts: 'all',
      tasks: [
        file.task('iscsi directory', (ctx) => ({ path: `${root(ctx)}/etc/iscsi`, state: 'directory', mode: '0755' })),
        setting.task('CHAP in iscsid.conf', (ctx) => ({
          path: `${root(ctx)}/etc/iscsi/iscsid.conf`,
          create: true,
          mode: '0600',
          settings: { 'node.session.auth.authmethod': 'CHAP', 'node.session.auth.username': ctx.host },
          secrets: { 'node.session.auth.password': chap(ctx) },
        })),
        copy.task('a token file', (ctx) => ({ path: `${root(ctx)}/etc/token`, content: TOKEN, mode: '0600' })),
        command.task('a secret on stdin', (ctx) => ({ argv: ['sh', '-c', 'cat > "$1"', 'sh', `${root(ctx)}/stdin-copy`], stdin: chap(ctx), creates: `${root(ctx)}/stdin-copy` })),
        command.task('a secret in argv', (ctx) => ({ argv: ['sh', '-c', ': "$1"; echo done', 'sh', chap(ctx)], creates: `${root(ctx)}/etc/token` })),
        command.task(
          'a failing command with the secret in argv',
          (ctx) => ({ argv: ['sh', '-c', 'echo "refused $1" >&2; exit 3', 'sh', chap(ctx)] }),
          { ignoreErrors: true, tags: ['fail'] },
        ),
        copy.task('a failing write with the secret in its path', (ctx) => ({ path: `${root(ctx)}/no/such/dir/${reveal(chap(ctx))}`, content: 'x' }), {
          ignoreErrors: true,
          tags: ['fail'],
        }),
      ],
    }),
  ],
});

function reveal(s: Secret): string {
  return s.reveal();
}

await runIfMain(secrets, import.meta.url);
