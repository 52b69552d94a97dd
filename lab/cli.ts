/**
 * npm run lab -- up [--topology full|small] [--install-deps]   build (once) and boot the lab; writes inventory/lab.yaml
 * npm run lab -- down                                          remove every VM, tap, bridge and namespace
 * npm run lab -- status                                        what runs
 * npm run lab -- ssh NAME [COMMAND...]                         log in to a VM (or run a command)
 * npm run lab -- reboot NAME                                   reboot a VM from inside and wait for it
 * npm run lab -- start NAME [--no-wait] | stop NAME             start a stopped (or diskless) VM; power one off
 * npm run lab -- console NAME                                  the end of a VM's serial console
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { labDown, labStatus, labUp, missingHostPackages, openLab, rebootVm, startLabVm, stopLabVm } from './lab.ts';
import { TOPOLOGIES } from './topology.ts';
import { consoleTail } from './vm.ts';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line: string): void => void process.stdout.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      topology: { type: 'string', default: process.env['SANBOOK_LAB_TOPOLOGY'] ?? 'full' },
      'install-deps': { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [verb, name, ...rest] = positionals;
  if (values.help || verb === undefined) {
    process.stdout.write(`usage: npm run lab -- up [--topology ${Object.keys(TOPOLOGIES).join('|')}] [--install-deps] | down | status | ssh NAME [CMD...] | reboot NAME | start NAME [--no-wait] | stop NAME | console NAME\n`);
    return verb === undefined && !values.help ? 1 : 0;
  }
  switch (verb) {
    case 'up': {
      const missing = await missingHostPackages();
      if (missing.length > 0 && values['install-deps']) {
        log(`installing ${missing.join(' ')}`);
        const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
        const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
        if (update.status !== 0) return 1;
        const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', '--', ...missing], { stdio: 'inherit', env });
        if (install.status !== 0) return 1;
      }
      await labUp({ projectRoot, topology: values.topology ?? 'full', log });
      return 0;
    }
    case 'down':
      await labDown({ projectRoot, log });
      return 0;
    case 'status': {
      const s = await labStatus(projectRoot);
      if (!s) {
        log('no lab (npm run lab -- up)');
        return 0;
      }
      log(`topology ${s.state.topology}, ${s.state.accel}, package repository on 127.0.0.1:${s.state.repo.port}`);
      for (const vm of s.vms) log(`${vm.name.padEnd(7)} ${vm.running ? 'running' : 'stopped'}  ssh -p ${vm.sshPort} root@127.0.0.1  | ${vm.console}`);
      return 0;
    }
    case 'start':
    case 'stop': {
      const lab = await openLab(projectRoot);
      if (verb === 'stop') {
        await stopLabVm(lab, name ?? '');
        log(`${name ?? ''} stopped`);
      } else {
        const ms = await startLabVm(lab, name ?? '', { wait: !values['no-wait'] });
        log(values['no-wait'] ? `${name ?? ''} started (console: npm run lab -- console ${name ?? ''})` : `${name ?? ''} up in ${Math.round(ms / 1000)} s`);
      }
      return 0;
    }
    case 'ssh':
    case 'reboot':
    case 'console': {
      const lab = await openLab(projectRoot);
      const rt = lab.vms.find((v) => v.spec.name === name);
      if (!rt) throw new Error(`no VM named "${name ?? ''}" (${lab.vms.map((v) => v.spec.name).join(', ')})`);
      if (verb === 'console') {
        log(await consoleTail(rt, 60));
        return 0;
      }
      if (verb === 'reboot') {
        log(`${rt.spec.name} rebooted in ${Math.round((await rebootVm(lab, rt.spec.name)) / 1000)} s`);
        return 0;
      }
      const r = spawnSync(
        'ssh',
        ['-i', lab.paths.clientKey, '-p', String(rt.sshPort), '-o', `UserKnownHostsFile=${lab.paths.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', 'root@127.0.0.1', ...rest],
        { stdio: 'inherit' },
      );
      return r.status ?? 1;
    }
    default:
      throw new Error(`unknown command "${verb}" (up, down, status, ssh, reboot, start, stop, console)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
