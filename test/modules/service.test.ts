// Plan tests on facts; the parser is tested on output recorded on the lab VMs (service-fixtures.test.ts).
import test from 'ava';
import { planService, service, type ServiceFacts, type ServiceParams } from '../../modules/service.ts';

const unit = (over: Partial<ServiceFacts> = {}): ServiceFacts => ({
  id: 'iscsid.service',
  loadState: 'loaded',
  activeState: 'inactive',
  subState: 'dead',
  unitFileState: 'disabled',
  canReload: false,
  needDaemonReload: false,
  ...over,
});
const running = (over: Partial<ServiceFacts> = {}) => unit({ activeState: 'active', subState: 'running', ...over });

const cases: { name: string; params: ServiceParams; facts: ServiceFacts; expect: string[]; actions?: number; throws?: RegExp }[] = [
  { name: 'started: converged', params: { name: 'iscsid', state: 'started' }, facts: running(), expect: [] },
  { name: 'started: from inactive', params: { name: 'iscsid', state: 'started' }, facts: unit(), expect: ['start iscsid.service (inactive)'] },
  { name: 'started: from failed', params: { name: 'iscsid', state: 'started' }, facts: unit({ activeState: 'failed' }), expect: ['start iscsid.service (failed)'] },
  { name: 'stopped: converged (failed counts as stopped)', params: { name: 'iscsid', state: 'stopped' }, facts: unit({ activeState: 'failed' }), expect: [] },
  { name: 'stopped: running', params: { name: 'iscsid', state: 'stopped' }, facts: running(), expect: ['stop iscsid.service'] },
  { name: 'enabled + started from scratch', params: { name: 'iscsid', state: 'started', enabled: true }, facts: unit(), expect: ['enable iscsid.service', 'start iscsid.service (inactive)'] },
  { name: 'enabled: converged', params: { name: 'iscsid', enabled: true }, facts: unit({ unitFileState: 'enabled' }), expect: [] },
  { name: 'enabled: static is left alone', params: { name: 'iscsid', enabled: true }, facts: unit({ unitFileState: 'static' }), expect: [] },
  { name: 'disabled', params: { name: 'iscsid', enabled: false }, facts: unit({ unitFileState: 'enabled' }), expect: ['disable iscsid.service'] },
  { name: 'disabled: converged', params: { name: 'iscsid', enabled: false }, facts: unit(), expect: [] },
  { name: 'restarted: an action every time', params: { name: 'iscsid', state: 'restarted' }, facts: running(), expect: ['restart iscsid.service'], actions: 1 },
  { name: 'restarted: stopped unit', params: { name: 'iscsid', state: 'restarted' }, facts: unit(), expect: ['start iscsid.service (restart asked; it was inactive)'], actions: 1 },
  { name: 'reloaded: running and reloadable', params: { name: 'iscsid', state: 'reloaded' }, facts: running({ canReload: true }), expect: ['reload iscsid.service'], actions: 1 },
  { name: 'reloaded: stopped unit is started (converges)', params: { name: 'iscsid', state: 'reloaded' }, facts: unit(), expect: ['start iscsid.service (reload asked; it was inactive)'] },
  { name: 'reloaded: cannot reload', params: { name: 'iscsid', state: 'reloaded' }, facts: running(), expect: [], throws: /cannot reload/ },
  { name: 'daemon-reload when systemd asks for it', params: { name: 'iscsid', daemonReload: true, state: 'started' }, facts: running({ needDaemonReload: true }), expect: ['reload systemd unit files (for iscsid.service)'] },
  { name: 'daemon-reload: not needed', params: { name: 'iscsid', daemonReload: true }, facts: running(), expect: [] },
  {
    name: 'daemon-reload: a unit not loaded yet',
    params: { name: 'new.service', daemonReload: true, state: 'started', enabled: true },
    facts: unit({ id: 'new.service', loadState: 'not-found', unitFileState: '' }),
    expect: ['reload systemd unit files (for new.service)', 'enable new.service', 'start new.service (inactive)'],
  },
  { name: 'masked: mask after stopping', params: { name: 'iscsid', masked: true, state: 'stopped' }, facts: running(), expect: ['stop iscsid.service', 'mask iscsid.service'] },
  { name: 'masked: converged', params: { name: 'iscsid', masked: true }, facts: unit({ loadState: 'masked', unitFileState: 'masked' }), expect: [] },
  {
    name: 'unmask, enable and start',
    params: { name: 'iscsid', masked: false, enabled: true, state: 'started' },
    facts: unit({ loadState: 'masked', unitFileState: 'masked' }),
    expect: ['unmask iscsid.service', 'enable iscsid.service', 'start iscsid.service (inactive)'],
  },
  { name: 'a masked unit cannot be started', params: { name: 'iscsid', state: 'started' }, facts: unit({ loadState: 'masked', unitFileState: 'masked' }), expect: [], throws: /is masked/ },
  { name: 'masked + started conflict', params: { name: 'iscsid', masked: true, state: 'started' }, facts: unit(), expect: [], throws: /conflicts/ },
];

for (const c of cases) {
  test(`plan: ${c.name}`, (t) => {
    const params = service.validate(c.params);
    if (c.throws) {
      t.throws(() => planService(params, c.facts), { message: c.throws });
      return;
    }
    const changes = planService(params, c.facts);
    t.deepEqual(changes.map((x) => x.summary), c.expect);
    t.is(changes.filter((x) => x.action).length, c.actions ?? 0);
  });
}

test('plan: the commands', (t) => {
  const changes = planService(service.validate({ name: 'getty@tty1', state: 'started', enabled: true }), unit({ id: 'getty@tty1.service' }));
  t.deepEqual(
    changes.flatMap((c) => c.steps.map((s) => (s.kind === 'exec' ? s.command.display : ''))),
    ['systemctl enable getty@tty1', 'systemctl start getty@tty1'],
  );
  t.throws(() => service.validate({ name: '--now' }));
});

test('gather: a host without systemd is a clear error', async (t) => {
  const params = service.validate({ name: 'iscsid' });
  const facts = { systemd: false } as unknown as Parameters<typeof service.gather>[2]['facts'];
  const conn = {} as Parameters<typeof service.gather>[0];
  await t.throwsAsync(service.gather(conn, params, { host: 'web1', facts }), { message: 'service iscsid: systemd is not running on web1' });
});
