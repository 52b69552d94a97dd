/**
 * The lab's package repository as a process of its own, so that it outlives `lab up`:
 *
 *   npx tsx lab/repo-server.ts DIR PORT PIDFILE
 *
 * Serves DIR read-only on 127.0.0.1:PORT (0 = any free port; the port is printed), writes its PID to PIDFILE
 * once listening, and on SIGTERM/SIGINT closes and removes PIDFILE. Started by startRepoServer({ detached }).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { serveRepo } from './repo.ts';

const [dir, portText, pidFile] = process.argv.slice(2);
const port = Number(portText);
if (dir === undefined || pidFile === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write('usage: npx tsx lab/repo-server.ts DIR PORT PIDFILE\n');
  process.exit(1);
}

const server = await serveRepo(dir, { port });
await writeFile(pidFile, `${process.pid}\n`);
process.stdout.write(`${new Date().toISOString()} serving ${dir} on http://127.0.0.1:${server.port}/ (pid ${process.pid})\n`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.stop();
  // Remove the pid file only if it is still ours (a newer server may have taken it over).
  if ((await readFile(pidFile!, 'utf8').catch(() => '')).trim() === String(process.pid)) await rm(pidFile!, { force: true });
  process.stdout.write(`${new Date().toISOString()} stopped (${signal})\n`);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGHUP', () => undefined);   // survive the terminal that started it going away
