/**
 * What the lab gives playbooks/iscsi-boot.ts: the packages of a diskless client's root filesystem as a
 * debootstrap tarball (the lab's package repository is a flat one, not a mirror debootstrap can use), made once
 * on this machine with `debootstrap --make-tarball` from its own Debian mirror and served by the lab's repository
 * server to the guests (http://10.0.2.100/debootstrap/...). The playbook's boot server runs debootstrap
 * --unpack-tarball with the same suite, variant and packages.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT_PACKAGES, ROOT_SUITE, ROOT_VARIANT } from '../playbooks/iscsi-boot/vars.ts';
import { hostMirror } from './image.ts';
import { run } from './repo.ts';
import { REPO_GUEST_ADDRESS } from './vm.ts';

export interface DebootstrapTarball {
  /** Where guests download it. */
  readonly url: string;
  readonly sha256: string;
  readonly path: string;
}

function sha256Of(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

/** The tarball in the repository directory, made when missing (needs root and this machine's Debian mirror). */
export async function ensureDebootstrapTarball(repoDir: string, log: (line: string) => void, mirror?: string): Promise<DebootstrapTarball> {
  const recipe = JSON.stringify({ suite: ROOT_SUITE, variant: ROOT_VARIANT, include: [...ROOT_PACKAGES].sort() });
  const name = `${ROOT_SUITE}-${createHash('sha256').update(recipe).digest('hex').slice(0, 16)}.tgz`;
  const dir = join(repoDir, 'debootstrap');
  const path = join(dir, name);
  const url = `http://${REPO_GUEST_ADDRESS}/debootstrap/${name}`;
  if (existsSync(path)) {
    const known = (await readFile(`${path}.sha256`, 'utf8').catch(() => '')).trim();
    return { url, path, sha256: /^[0-9a-f]{64}$/.test(known) ? known : await sha256Of(path) };
  }
  if (process.getuid?.() !== 0) throw new Error('the debootstrap tarball of the diskless clients: making it needs root (debootstrap)');
  await mkdir(dir, { recursive: true });
  const work = join(dir, `.work-${process.pid}`);
  const part = `${path}.part-${process.pid}`;
  const from = mirror ?? (await hostMirror(ROOT_SUITE));
  const t = Date.now();
  log(`debootstrap tarball for the diskless clients (${ROOT_PACKAGES.length} packages and their dependencies) from ${from}`);
  try {
    await run(['debootstrap', `--make-tarball=${part}`, `--variant=${ROOT_VARIANT}`, `--include=${ROOT_PACKAGES.join(',')}`, ROOT_SUITE, work, from], {
      step: 'debootstrap --make-tarball', timeoutMs: 30 * 60_000,
    });
    const sha256 = await sha256Of(part);
    await writeFile(`${path}.sha256`, `${sha256}\n`);
    await rename(part, path);
    log(`debootstrap tarball ${name} in ${Math.round((Date.now() - t) / 1000)} s`);
    return { url, path, sha256 };
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(part, { force: true });
  }
}
