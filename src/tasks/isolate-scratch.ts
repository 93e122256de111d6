/**
 * Keeps a drill's scratch host from acting as production. The restored
 * archive carries production's domains (`/home/dokku/VHOST`, each app's
 * `VHOST`) and the state that schedules work: the letsencrypt plugin's
 * auto-renew flag (its `cron-entries` trigger adds `letsencrypt:auto-renew`
 * to the dokku user's crontab), app.json cron tasks (Dokku's cron plugin
 * writes them to that crontab at each deploy), and whatever
 * `/etc/cron.d/dokku-*` entries the scratch host holds (a datastore's
 * backup-schedule would upload the restored data to production's bucket with
 * production's credentials). So, before any app starts: every app with
 * domains answers `<app>.<suffix>` instead (`dokku domains:set`), the global
 * VHOST becomes the suffix, auto-renew is switched off, the cron plugin is put
 * in maintenance (no app.json task is written again), and the cron entries
 * and the dokku crontab are moved aside; after the rebuild, the cron sweep
 * runs again. Everything disabled is listed in the step's output
 * (`disabled`), which the drill report prints.
 */
import { StopError } from '../errors.js';
import { $, type Command, hole } from '../ssh/shell.js';
import { FERRY_ROOT, P } from './common.js';
import { stagePaths } from './stage.js';
import { defineTask, type PlannedAction, type RuntimeOf } from './types.js';

/** The letsencrypt plugin's global auto-renew flag (dokku-letsencrypt `internal-functions`, `cron-entries`). */
export const LETSENCRYPT_AUTORENEW = '/var/lib/dokku/data/letsencrypt/--global/autorenew';

/** Where a drill keeps what it disabled on the scratch host (root-only). */
export function disabledDir(runId: string): string {
  return `${FERRY_ROOT}/drill-disabled/${runId}`;
}

/** Dokku's `is_valid_hostname` (plugins/domains/functions), and no IP address. */
export function isDomainName(name: string): boolean {
  const h = name.toLowerCase();
  return /^[a-z0-9.*-]*[a-z0-9*-]$/.test(h) && !/^(\d{1,3}\.){3}\d{1,3}$/.test(h);
}

/** The name an app answers on the scratch host: always under the suffix. */
export function scratchDomain(app: string, suffix: string): string {
  return `${app}.${suffix}`;
}

/** The domains of a VHOST file's text (one a line). */
export function vhostLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/**
 * Whether `name` would claim a production name: one of production's domains,
 * a global vhost, or a name under a production global vhost (its wildcard).
 */
export function claimsProduction(
  name: string,
  prodDomains: ReadonlySet<string>,
  prodGlobal: readonly string[],
): boolean {
  const n = name.toLowerCase();
  if (prodDomains.has(n)) return true;
  return prodGlobal.some((g) => {
    const v = g.toLowerCase();
    return n === v || n.endsWith(`.${v}`);
  });
}

/** Reads a VHOST file; empty when there is none. */
function readVhost(path: Command | string): Command {
  return $`cat -- ${path} 2>/dev/null || true`;
}

/** Moves the dokku-* cron files of /etc/cron.d aside; prints each name. */
export function disableCronDCommand(runId: string): Command {
  const dir = `${disabledDir(runId)}/cron.d`;
  return $`d=${dir}
for f in /etc/cron.d/dokku-*; do [ -f "$f" ] || continue; install -d -m 0700 "$d"; mv -f -- "$f" "$d/" && printf '%s\\n' "\${f##*/}"; done`;
}

/**
 * Saves the dokku user's crontab aside and removes it; prints its active
 * entries (not comments, blank lines or VAR= lines), or `ferry-no-crontab`
 * when the host has no crontab(1).
 */
export function disableCrontabCommand(runId: string): Command {
  const dir = disabledDir(runId);
  return $`command -v crontab >/dev/null || { echo ferry-no-crontab; exit 0; }
t=$(mktemp)
if crontab -l -u dokku >"$t" 2>/dev/null; then
  install -d -m 0700 ${dir}; cp -- "$t" ${dir}/"crontab-dokku.$(date +%s%N)"; crontab -r -u dokku
  grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_][A-Za-z0-9_]*=' "$t" || true
fi
rm -f -- "$t"`;
}

/** Moves the letsencrypt auto-renew flag aside; prints `disabled` when there was one. */
export function disableAutorenewCommand(runId: string): Command {
  const dir = disabledDir(runId);
  return $`if [ -e ${LETSENCRYPT_AUTORENEW} ]; then install -d -m 0700 ${dir} && mv -f -- ${LETSENCRYPT_AUTORENEW} ${dir}/letsencrypt-autorenew && echo disabled; fi`;
}

const definition = defineTask({
  name: 'isolate-scratch',
  summary: 'keep the scratch host from acting as production: its own domains, no cron',
  runsOn: 'host',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      domains: {
        type: 'boolean',
        default: true,
        description:
          "Remap every app's domains under the drill's domain suffix (--domain-suffix, default the scratch host's own global VHOST). Off for the sweep after the rebuild: only cron is disabled again.",
      },
    },
  },
  actions: {
    'own-vhost': [],
    'prod-vhost': [],
    'read-domains': ['app'],
    'set-global': ['domain'],
    'set-domains': ['app', 'domain'],
    autorenew: [],
    'cron-maintenance': [],
    'cron-d': [],
    crontab: [],
  },
  plan({ host, params, options }) {
    const h = host!.name;
    const actions: PlannedAction[] = [];
    if (params.domains) {
      const suffix = options.domainSuffix;
      actions.push(
        ...(suffix === undefined
          ? [
              {
                kind: 'remote' as const,
                id: 'own-vhost',
                host: h,
                command: readVhost(`${stagePaths(options.runId).homeAside}/VHOST`),
                why: "the scratch host's own global VHOST (kept aside by extract) is the default domain suffix",
              },
            ]
          : []),
        {
          kind: 'remote',
          id: 'prod-vhost',
          host: h,
          command: readVhost('/home/dokku/VHOST'),
          why: "production's global VHOST: no scratch name may fall under it",
        },
        {
          kind: 'remote',
          id: 'read-domains',
          host: h,
          command: $`cat -- /home/dokku/${P.app}/VHOST 2>/dev/null || true`,
          forEach: 'app',
          why: 'the restored (production) domains of each app',
        },
        {
          kind: 'remote',
          id: 'set-global',
          host: h,
          command: $`dokku domains:set-global ${hole('domain')}`,
          where: `<domain> is ${suffix ?? "the scratch host's own global VHOST"}`,
          changes: true,
        },
        {
          kind: 'remote',
          id: 'set-domains',
          host: h,
          command: $`dokku domains:set ${P.app} ${hole('domain')}`,
          forEach: 'app',
          where: 'apps with domains; <domain> is <app>.<suffix>',
          why: 'the scratch host must never claim a production name, nor ask for its certificate',
          changes: true,
        },
      );
    }
    actions.push(
      {
        kind: 'remote',
        id: 'autorenew',
        host: h,
        command: disableAutorenewCommand(options.runId),
        why: "letsencrypt's auto-renew puts a renewal in the dokku user's crontab",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'cron-d',
        host: h,
        command: disableCronDCommand(options.runId),
        why: 'scheduled datastore backups would upload to production with its credentials',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'crontab',
        host: h,
        command: disableCrontabCommand(options.runId),
        why: "the dokku user's crontab: app.json cron tasks, certificate renewals (saved before cron:set, which rewrites it)",
        changes: true,
      },
      {
        kind: 'remote',
        id: 'cron-maintenance',
        host: h,
        command: $`dokku cron:set --global maintenance true`,
        why: "no app.json cron task is written to the dokku user's crontab at a deploy (Dokku 0.36+)",
        changes: true,
      },
    );
    return actions;
  },
});

async function run(rt: RuntimeOf<typeof definition>) {
  const h = rt.ctx.host!.name;
  const runId = rt.ctx.options.runId;
  const disabled: string[] = [];
  const out: { suffix?: string; domains?: Record<string, string>; disabled: string[] } = {
    disabled,
  };

  if (rt.ctx.params.domains) {
    let suffix = rt.ctx.options.domainSuffix;
    if (suffix === undefined) {
      const own = vhostLines((await rt.exec('own-vhost')).stdout).find(isDomainName);
      if (own === undefined) {
        throw new StopError(`${h} had no global VHOST to name the restored apps after`, {
          hint: 'Give the names the scratch host answers under: ferry drill HOST --to SCRATCH --domain-suffix drill.example.com',
        });
      }
      suffix = own;
    }
    const prodGlobal = vhostLines((await rt.exec('prod-vhost')).stdout);
    const apps = rt.manifest().apps.map((a) => a.name);
    const prod = new Map<string, string[]>();
    for (const app of apps)
      prod.set(app, vhostLines((await rt.exec('read-domains', { app })).stdout));
    const prodDomains = new Set([...prod.values()].flat().map((d) => d.toLowerCase()));
    const remap = new Map<string, string>();
    for (const [app, domains] of prod) {
      if (domains.length === 0) continue;
      const name = scratchDomain(app, suffix);
      if (!isDomainName(name) || claimsProduction(name, prodDomains, prodGlobal)) {
        throw new StopError(
          `${name} (app ${app} on ${h}) would be a production name: production answers ${[...prodGlobal, ...domains].join(', ')}`,
          {
            hint: 'Choose a --domain-suffix outside production, e.g. drill.example.com, or set the scratch host its own global VHOST (dokku domains:set-global).',
          },
        );
      }
      remap.set(app, name);
    }
    if (claimsProduction(suffix, prodDomains, prodGlobal)) {
      throw new StopError(`the domain suffix ${suffix} is production's`, {
        hint: 'Choose a --domain-suffix outside production, e.g. drill.example.com.',
      });
    }
    await rt.exec('set-global', { domain: suffix });
    if (prodGlobal.length > 0) disabled.push(`global VHOST ${prodGlobal.join(' ')} → ${suffix}`);
    for (const [app, name] of remap) {
      await rt.exec('set-domains', { app, domain: name });
      disabled.push(`domains of ${app}: ${prod.get(app)!.join(' ')} → ${name}`);
    }
    out.suffix = suffix;
    out.domains = Object.fromEntries(remap);
    rt.task.log(`${remap.size} app(s) answer under ${suffix} only`);
  }

  if ((await rt.exec('autorenew')).stdout.includes('disabled')) {
    disabled.push("letsencrypt auto-renew (the plugin's global autorenew flag)");
  }
  const cronD = (await rt.exec('cron-d')).stdout.split('\n').filter((l) => l.trim() !== '');
  for (const f of cronD) disabled.push(`/etc/cron.d/${f}`);
  const tab = (await rt.exec('crontab')).stdout;
  if (tab.includes('ferry-no-crontab')) {
    rt.task.log(`${h} has no crontab(1): no user crontab to disable`);
  } else {
    for (const line of tab.split('\n').filter((l) => l.trim() !== '')) {
      disabled.push(`dokku crontab entry: ${line}`);
    }
  }
  const maint = await rt.exec('cron-maintenance', {}, { allowCodes: [0, 1] });
  if (maint.code === 0) {
    if (rt.ctx.params.domains)
      disabled.push('app.json cron tasks (cron:set --global maintenance true)');
  } else {
    rt.task.warn(
      `${h}: cron:set --global maintenance failed (Dokku before 0.36 has none): a deploy on the scratch host writes app.json cron tasks to the dokku crontab again`,
    );
  }
  if (cronD.length > 0 || (tab.trim() !== '' && !tab.includes('ferry-no-crontab'))) {
    rt.task.hostState(h, `disabled cron entries kept in ${disabledDir(runId)}`);
  }
  rt.task.log(disabled.length === 0 ? 'nothing to disable' : `disabled: ${disabled.join('; ')}`);
  return out;
}

export default definition.runs(run);
