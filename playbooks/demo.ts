/**
 * The plain modules at work on a few hosts: directories, files, a template with a handler, iscsid.conf-style
 * settings, a link, a command that runs once, a read-only query whose output another play reads across hosts,
 * and a package check. Every path lives under the host's `root` variable, so that hosts sharing one machine
 * (the loopback demo: `npm run demo`) do not collide.
 *
 *   npx tsx playbooks/demo.ts -i INVENTORY [--check] [--diff]
 */
import { play, playbook, runIfMain, type TaskContext } from '../lib/index.ts';
import { command, copy, file, pkg, query, setting, template } from '../modules/index.ts';

const root = (ctx: TaskContext): string => ctx.vars['root'] as string;
const iqn = (host: string): string => `iqn.2024-12.tp2.b3:${host}-initiator`;

// A read-only fact of each host that later plays read across hosts: the SSH address it answers on.
const sshAddress = query.task('read the address this host answers SSH on', {
  shell: 'set -- $SSH_CONNECTION; echo "$3:$4"',
});

export const demo = playbook({
  name: 'demo',
  description: 'the plain modules on every host of the inventory',
  varsSchema: {
    type: 'object',
    required: ['root'],
    properties: { root: { type: 'string', pattern: '^/', description: 'where this host keeps its files' } },
  },
  plays: [
    play({
      name: 'configure each node',
      hosts: 'all',
      tasks: [
        file.task('config directory', (ctx) => ({ path: `${root(ctx)}/etc/sanbook`, state: 'directory', mode: '0755' })),
        file.task('iscsi directory', (ctx) => ({ path: `${root(ctx)}/etc/iscsi`, state: 'directory', mode: '0755' })),
        copy.task('node id', (ctx) => ({ path: `${root(ctx)}/etc/sanbook/node-id`, content: `${ctx.host}\n`, mode: '0644' })),
        template.task(
          'node configuration',
          (ctx) => ({
            path: `${root(ctx)}/etc/sanbook/node.conf`,
            template: 'demo-node.conf',
            vars: { host: ctx.host, initiator: iqn(ctx.host), peers: ctx.hosts().filter((h) => h !== ctx.host) },
            mode: '0640',
          }),
          { notify: 'reload node' },
        ),
        setting.task('iscsid.conf settings', (ctx) => ({
          path: `${root(ctx)}/etc/iscsi/iscsid.conf`,
          create: true,
          settings: { 'node.startup': 'automatic', 'node.session.timeo.replacement_timeout': 15 },
        })),
        file.task('current configuration link', (ctx) => ({
          path: `${root(ctx)}/etc/sanbook/current.conf`,
          state: 'link',
          src: `${root(ctx)}/etc/sanbook/node.conf`,
        })),
        command.task('initialise once', (ctx) => ({
          argv: ['sh', '-c', 'date -u +%FT%TZ > "$1"', 'sh', `${root(ctx)}/etc/sanbook/initialised`],
          creates: `${root(ctx)}/etc/sanbook/initialised`,
        })),
        sshAddress,
        pkg.task('ssh server present', { name: 'openssh-server', state: 'present' }),
      ],
      handlers: [
        command.task('reload node', (ctx) => ({ argv: ['touch', `${root(ctx)}/etc/sanbook/reloaded`] })),
      ],
    }),
    play({
      name: 'share what each node learned',
      hosts: 'all',
      tasks: [
        copy.task('peers file from the other hosts\' results', (ctx) => ({
          path: `${root(ctx)}/etc/sanbook/peers`,
          content: ctx
            .hosts()
            .map((h) => `${h} ${ctx.result(sshAddress, h)?.stdout.trim() ?? '?'}\n`)
            .join(''),
        })),
      ],
    }),
  ],
});

await runIfMain(demo, import.meta.url);
