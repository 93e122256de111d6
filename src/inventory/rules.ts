/**
 * The inventory rules that do not depend on how the file is written (ferry's
 * YAML, Ansible YAML, Ansible INI): each returns what is wrong in words, and
 * the format's loader says where it was written.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { HOST_NAME } from '../schema/inventory.js';

/** Names that cannot be host names, because they mean something else in a playbook. */
export const RESERVED_HOST_NAMES = ['controller'] as const;

/** Paths the seed's archive holds; an archive directory inside them would archive itself. */
export const DOKKU_PATHS = [
  '/home/dokku',
  '/var/lib/dokku/config',
  '/var/lib/dokku/data',
  '/var/lib/dokku/services',
  '/var/lib/dokku/plugins',
] as const;

/** A problem in words: the message, and what to do. */
export interface Problem {
  message: string;
  hint?: string;
}

/** Expands `~` and makes a path absolute (relative to the inventory's folder). */
export function expandPath(p: string, file: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return resolve(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(dirname(resolve(file)), p);
}

/** Why `name` cannot name a host, or undefined. */
export function hostNameProblem(name: string): Problem | undefined {
  if ((RESERVED_HOST_NAMES as readonly string[]).includes(name)) {
    return {
      message: `"${name}" cannot be a host name: playbooks use it for this machine`,
      hint: 'Rename the host.',
    };
  }
  if (!HOST_NAME.test(name)) {
    return {
      message: `host name ${JSON.stringify(name)} must start with a letter or digit and contain only letters, digits, ".", "_" and "-"`,
      hint: 'You type it on the command line (`ferry migrate old new`); keep it plain.',
    };
  }
  return undefined;
}

/** Why `dir` cannot hold archives on a host, or undefined. */
export function backupDirProblem(dir: string, field = 'backup.dir'): Problem | undefined {
  if (!dir.startsWith('/')) {
    return {
      message: `${field} must be an absolute path on the host, got ${JSON.stringify(dir)}`,
      hint: "For example /var/lib/dokku-ferry/archives (`~` would mean the remote user's home, which differs between hosts).",
    };
  }
  const clean = dir.replace(/\/+$/, '') || '/';
  const inside = DOKKU_PATHS.find(
    (p) => clean === p || clean.startsWith(`${p}/`) || p.startsWith(`${clean}/`) || clean === '/',
  );
  if (!inside) return undefined;
  return {
    message: `${field} ${dir} overlaps ${inside}, which every archive holds: archives would end up inside archives`,
    hint: 'Use a directory outside /home/dokku and /var/lib/dokku, such as /var/lib/dokku-ferry/archives.',
  };
}

/** Each repo entry that repeats an earlier one (same clone and remote), with the earlier index. */
export function repeatedRepos(
  repos: readonly { path: string; remote: string }[],
): { index: number; first: number }[] {
  const seen = new Map<string, number>();
  const out: { index: number; first: number }[] = [];
  repos.forEach((r, index) => {
    const key = `${r.path}\0${r.remote}`;
    const first = seen.get(key);
    if (first !== undefined) out.push({ index, first });
    else seen.set(key, index);
  });
  return out;
}

/** The hint for a missing identity file. */
export function missingIdentityHint(path: string): string {
  return path.startsWith('/var/lib/ferry-lab/')
    ? 'The lab writes this key when it starts: run `npm run lab -- up` first.'
    : `Point identity at your SSH private key, or create one: ssh-keygen -t ed25519 -f ${path}`;
}
