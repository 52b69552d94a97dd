// The lab suites: real VMs, minutes not seconds; one worker, long timeouts.
// `npm run test:lab` (what CI runs) is test/vm/san.test.ts: seed 000's network built by playbooks/san.ts on six
// blank VMs (its fresh run alone takes about 40 min under software emulation), checked, re-run, rebooted.
// `npm run test:lab:modules` runs the module tests (initiator, storage, tgt, lab), each on the small lab.
// AVA's timeout is the longest wait for a test's result: the fresh run is one test.
export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: ['test/vm/**/*.test.ts'],
  timeout: '60m',
  concurrency: 1,
  workerThreads: false,
  serial: true,
};
