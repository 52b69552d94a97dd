// The lab suite (npm run test:lab): real VMs, minutes not seconds; one worker, long timeouts.
export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  files: ['test/vm/**/*.test.ts'],
  timeout: '20m',
  concurrency: 1,
  workerThreads: false,
  serial: true,
};
