/** Run ids: one function makes them, so host folders, journals and plans agree. */
import { randomBytes } from 'node:crypto';

/** A run id from a time: `20261123T104500Z` (sortable, safe in file and folder names). */
export function runIdFor(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** A journal's id: the run id, the command and a random suffix (`20261123T224300Z-migrate-3fa9`). */
export function journalIdFor(date: Date, command: string): string {
  return `${runIdFor(date)}-${command}-${randomBytes(2).toString('hex')}`;
}

/** The run id a journal id starts with (host folders are named after it). */
export function runIdOfJournal(journalId: string): string {
  const m = /^(\d{8}T\d{6}Z)/.exec(journalId);
  return m ? m[1]! : journalId;
}
