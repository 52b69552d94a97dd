/**
 * The benchmark's workload: 20 idempotent tasks, written as a user would write them. bench/ansible/site.yml is
 * the same work for Ansible, task for task (same order, same paths under the host's `root`, same modes and
 * contents). Every path is under the host's `root` variable: the loopback hosts share this machine's disk.
 *
 * No service task: the benchmark machine has no systemd as PID 1 (containers, CI), so task 20 reads the
 * package database a second time instead (two packages at once), a read of system state of about the same
 * weight as `systemctl show`. See bench/RESULTS.md.
 *
 *   npx tsx bench/workload.ts -i INVENTORY [--check] [--forks N]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { play, playbook, runIfMain, type TaskContext } from '../lib/index.ts';
// The six modules it uses, each from its own file, as a playbook may import them (Ansible, too, loads only the
// modules its tasks name): modules/index.ts would load all 25 modules, about 0.25 s more of start-up here.
import { command } from '../modules/command.ts';
import { copy } from '../modules/copy.ts';
import { file } from '../modules/file.ts';
import { pkg } from '../modules/package.ts';
import { setting } from '../modules/setting.ts';
import { template } from '../modules/template.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = (ctx: TaskContext): string => ctx.vars['root'] as string;
const at = (ctx: TaskContext, path: string): string => `${root(ctx)}${path}`;

/** The text both sides write in motd (task 6); site.yml holds the same text. */
export const MOTD = 'This host is configured by a benchmark.\nChanges made by hand are put back at the next run.\n';
/** The text both sides write in conf.d/10-limits.conf (task 7). */
export const LIMITS = 'max_connections = 128\nmax_queue = 1024\ntimeout_s = 30\n';
export const TASK_COUNT = 20;

export const workload = playbook({
  name: 'bench-workload',
  description: '20 idempotent tasks under each host\'s root (the same work as bench/ansible/site.yml)',
  varsSchema: {
    type: 'object',
    required: ['root'],
    properties: { root: { type: 'string', pattern: '^/', description: 'where this host keeps its files' } },
  },
  plays: [
    play({
      name: 'twenty idempotent tasks',
      hosts: 'all',
      tasks: [
        file.task('01 app config directory', (ctx) => ({ path: at(ctx, '/etc/app'), state: 'directory', mode: '0755' })),
        file.task('02 conf.d directory', (ctx) => ({ path: at(ctx, '/etc/app/conf.d'), state: 'directory', mode: '0755' })),
        file.task('03 state directory', (ctx) => ({ path: at(ctx, '/var/lib/app'), state: 'directory', mode: '0750' })),
        file.task('04 log directory', (ctx) => ({ path: at(ctx, '/var/log/app'), state: 'directory', mode: '0755' })),
        copy.task('05 node id', (ctx) => ({ path: at(ctx, '/etc/app/node-id'), content: `${ctx.host}\n`, mode: '0644' })),
        copy.task('06 motd', (ctx) => ({ path: at(ctx, '/etc/app/motd'), content: MOTD, mode: '0644' })),
        copy.task('07 limits', (ctx) => ({ path: at(ctx, '/etc/app/conf.d/10-limits.conf'), content: LIMITS, mode: '0644' })),
        setting.task('08 iscsid.conf node.startup', (ctx) => ({
          path: at(ctx, '/etc/app/iscsid.conf'),
          create: true,
          mode: '0644',
          settings: { 'node.startup': 'automatic' },
        })),
        setting.task('09 iscsid.conf replacement_timeout', (ctx) => ({
          path: at(ctx, '/etc/app/iscsid.conf'),
          settings: { 'node.session.timeo.replacement_timeout': 15 },
        })),
        setting.task('10 iscsid.conf cmds_max', (ctx) => ({
          path: at(ctx, '/etc/app/iscsid.conf'),
          settings: { 'node.session.cmds_max': 128 },
        })),
        setting.task('11 sshd_config-style line', (ctx) => ({
          path: at(ctx, '/etc/app/sshd_config'),
          create: true,
          mode: '0644',
          separator: ' ',
          settings: { PermitRootLogin: 'no' },
        })),
        setting.task('12 ini file option in a section', (ctx) => ({
          path: at(ctx, '/etc/app/app.ini'),
          create: true,
          mode: '0644',
          section: 'server',
          settings: { port: 8080 },
        })),
        template.task('13 app.conf from a template', (ctx) => ({
          path: at(ctx, '/etc/app/app.conf'),
          template: join(here, 'templates', 'app.conf.hbs'),
          vars: { host: ctx.host, port: 8080, backends: ['10.3.1.1', '10.3.2.1'] },
          mode: '0640',
        })),
        file.task('14 current.conf link', (ctx) => ({
          path: at(ctx, '/etc/app/current.conf'),
          state: 'link',
          src: at(ctx, '/etc/app/app.conf'),
        })),
        command.task('15 initialise once (creates)', (ctx) => ({
          argv: ['sh', '-c', 'date -u +%FT%TZ > "$1"', 'sh', at(ctx, '/var/lib/app/initialised')],
          creates: at(ctx, '/var/lib/app/initialised'),
        })),
        pkg.task('16 openssh-server present', { name: 'openssh-server', state: 'present' }),
        file.task('17 log file exists (touch)', (ctx) => ({ path: at(ctx, '/var/log/app/app.log'), state: 'touch' })),
        file.task('18 log file mode', (ctx) => ({ path: at(ctx, '/var/log/app/app.log'), state: 'file', mode: '0640' })),
        file.task('19 stale lock absent', (ctx) => ({ path: at(ctx, '/var/lib/app/stale.lock'), state: 'absent' })),
        pkg.task('20 base tools present (instead of a service: no systemd)', {
          name: ['coreutils', 'openssh-client'],
          state: 'present',
        }),
      ],
    }),
  ],
});

await runIfMain(workload, import.meta.url);
