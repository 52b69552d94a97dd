/** The service module's parser and plans on `systemctl show` output recorded on the lab VMs (lab/record.ts). */
import test from 'ava';
import { fixture, type Recorded } from '../helpers/fixtures.ts';
import { parseSystemctlShow, planService, service } from '../../modules/service.ts';


const load = (name: string): Recorded => fixture(`service/${name}`);

test('recorded with systemd 252 (Debian 12), by the very command gather runs', (t) => {
  for (const name of ['running-enabled', 'stopped-static', 'masked', 'not-found']) {
    const f = load(name);
    t.regex(f.tool, /^systemd 252 /);
    t.is(f.exitCode, 0);
    t.regex(f.command, /^systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState,CanReload,NeedDaemonReload /);
  }
});

test('a running, enabled unit: parsed, and converged for started + enabled', (t) => {
  const facts = parseSystemctlShow(load('running-enabled').stdout, 'ssh');
  t.deepEqual(facts, {
    id: 'ssh.service',
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    unitFileState: 'enabled',
    canReload: true,
    needDaemonReload: false,
  });
  t.deepEqual(planService(service.validate({ name: 'ssh', state: 'started', enabled: true }), facts), []);
  t.deepEqual(
    planService(service.validate({ name: 'ssh', state: 'stopped' }), facts).map((c) => c.summary),
    ['stop ssh.service'],
  );
});

test('a stopped unit plans a start; a masked one plans unmask before start', (t) => {
  const stopped = parseSystemctlShow(load('stopped-static').stdout, 'systemd-fsck-root');
  t.is(stopped.activeState, 'inactive');
  t.deepEqual(planService(service.validate({ name: 'systemd-fsck-root', state: 'started' }), stopped).map((c) => c.summary), [
    'start systemd-fsck-root.service (inactive)',
  ]);
  const masked = parseSystemctlShow(load('masked').stdout, 'e2scrub_reap.service');
  t.is(masked.loadState, 'masked');
  const plan = planService(service.validate({ name: 'e2scrub_reap.service', state: 'started', masked: false }), masked).map((c) => c.summary);
  t.deepEqual(plan, ['unmask e2scrub_reap.service', 'start e2scrub_reap.service (inactive)']);
});

test('a unit that does not exist is recognised', (t) => {
  const f = parseSystemctlShow(load('not-found').stdout, 'nosuchunit.service');
  t.is(f.loadState, 'not-found');
  t.is(f.id, 'nosuchunit.service');
});
