/**
 * The bench's "link" section: does ferry's transfer fit the link? On the
 * unshaped lab (2 cores shared by both hosts: the CPUs are the limit) and on
 * the source's link shaped to 100 Mbit/s (tc tbf in its namespace, a WAN),
 * ferry's direct copy (compression `auto`: a probe of the route picks none,
 * zstd -1 or zstd -3) against the raw direct pipe with each fixed choice, and
 * the seed's commands on both. Targets (issue 8): unshaped, ferry ≤ 0.85x
 * the raw zstd -1 pipe; shaped, ferry ≤ 1.0x the best fixed choice; ≥ 5x the
 * seed on both.
 */
import { $ } from '../src/ssh/shell.js';
import { LIVE_CODECS, type LiveCodec } from '../src/tasks/transfer.js';
import type { LabHost } from '../test/lab/lab.js';
import { pullCommand, timed } from './baselines.js';
import { DOKKU_PATHS } from './dataset.js';

/** The link the section shapes the source's outgoing traffic to. */
export const SHAPED_RATE = '100mbit';

/** Fixed choices the raw pipe is measured with, on the shaped link. */
export const FIXED: LiveCodec[] = ['none', 'zstd', 'zstd-3'];

/** The name of a raw direct measurement with `codec` (`raw direct` is zstd -1, unshaped). */
export function rawName(codec: LiveCodec, shaped: boolean): string {
  const c = codec === 'zstd' ? 'zstd -1' : codec === 'zstd-3' ? 'zstd -3' : codec;
  return `raw direct ${c}${shaped ? ` @${SHAPED_RATE}` : ''}`;
}

/** The raw direct pipe with a fixed codec: the target runs `ssh source 'tar | C' | C -d | tar x`. */
export function rawDirectWith(source: LabHost, target: LabHost, codec: LiveCodec): Promise<number> {
  const c = LIVE_CODECS[codec];
  const tar = $`tar -C / -cf - ${DOKKU_PATHS}`;
  const untar = $`tar -C / --numeric-owner -xpf -`;
  const send = (c ? $`${tar} | ${c.compress}` : tar).render();
  const receive = (c ? $`${c.decompress} | ${untar}` : untar).render();
  return timed(() => target.must(`set -euo pipefail; ${pullCommand(source, send)} | ${receive}`));
}

/** What the section needs from the bench's run. */
export interface LinkBench {
  src: LabHost;
  dst: LabHost;
  /** One measurement on a fresh target (skipped when BENCH_ONLY leaves it out). */
  measure(name: string, fn: () => Promise<unknown>): Promise<void>;
  /** ferry's direct copy (compression auto) and the seed's commands. */
  ferryDirect(): Promise<unknown>;
  seed(): Promise<unknown>;
  rounds: number;
}

/** Measures the shaped half of the section (the unshaped half is the bench's main rounds, plus `raw direct none`). */
export async function measureLink(b: LinkBench): Promise<void> {
  for (let round = 1; round <= b.rounds; round++) {
    await b.measure(rawName('none', false), () => rawDirectWith(b.src, b.dst, 'none'));
    await b.src.shape(SHAPED_RATE);
    try {
      for (const c of FIXED)
        await b.measure(rawName(c, true), () => rawDirectWith(b.src, b.dst, c));
      await b.measure(`ferry direct @${SHAPED_RATE}`, b.ferryDirect);
      if (round === 1) await b.measure(`seed commands @${SHAPED_RATE}`, b.seed);
    } finally {
      await b.src.shape(undefined);
    }
  }
}

/** One check of the bench's table. */
export interface Check {
  target: string;
  value: number;
  limit: string;
  ok: boolean;
}

/** The section's checks, from the medians (`med(name)`). */
export function linkChecks(med: (name: string) => number): Check[] {
  const best = Math.min(...FIXED.map((c) => med(rawName(c, true))));
  const ferryUn = med('ferry direct');
  const ferryShaped = med(`ferry direct @${SHAPED_RATE}`);
  const ratio = (a: number, b: number) => a / b;
  return [
    {
      target: 'link: ferry direct / raw direct zstd -1 (unshaped)',
      value: ratio(ferryUn, med('raw direct')),
      limit: '<= 0.85',
      ok: ratio(ferryUn, med('raw direct')) <= 0.85,
    },
    {
      target: `link: ferry direct / best fixed raw (@${SHAPED_RATE})`,
      value: ratio(ferryShaped, best),
      limit: '<= 1.0',
      ok: ratio(ferryShaped, best) <= 1.0,
    },
    {
      target: 'link: seed / ferry direct (unshaped)',
      value: ratio(med('seed commands'), ferryUn),
      limit: '>= 5',
      ok: ratio(med('seed commands'), ferryUn) >= 5,
    },
    {
      target: `link: seed / ferry direct (@${SHAPED_RATE})`,
      value: ratio(med(`seed commands @${SHAPED_RATE}`), ferryShaped),
      limit: '>= 5',
      ok: ratio(med(`seed commands @${SHAPED_RATE}`), ferryShaped) >= 5,
    },
  ];
}
