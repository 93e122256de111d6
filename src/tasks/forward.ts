/**
 * Forwarding after the cut-over: while DNS still sends clients to the
 * source, every connection they open to its ports 80 and 443 is carried to
 * the target, so each request is answered there and every write lands in
 * the target's database.
 *
 * How, and why so: the kernel redirects connections arriving from other
 * hosts on 80/443 (iptables `nat PREROUTING ... REDIRECT`, rules marked
 * `ferry-forward`) to a small TCP forwarder on the source (python3, asyncio),
 * which opens the same port on the target and copies bytes both ways. It
 * works whatever proxy the source runs (nginx, a caddy or traefik container
 * publishing port 80: the redirect comes before Docker's own rules) without
 * stopping or reconfiguring it, TLS included (bytes pass through; the
 * target's proxy answers with its certificates), and it goes away by
 * deleting the rules and stopping one process. Requests made on the source
 * itself are not redirected. The target sees the source as the client
 * address (no X-Forwarded-For at this level).
 *
 * It ends at `ferry forward HOST --stop`, or by itself after its TTL (the
 * forwarder exits and its wrapper deletes the rules).
 */
import { StopError } from '../errors.js';
import { $, type Command } from '../ssh/shell.js';
import { type Arg, FERRY_ROOT, P } from './common.js';
import { defineTask, type PlannedAction, type RuntimeOf, type StepOutputs } from './types.js';
import { answered, parseHttpLine } from './verify-apps.js';

/** Where the forwarder keeps its script, pid and ports. */
export const FORWARD_DIR = `${FERRY_ROOT}/forward`;

/** The iptables comment that marks ferry's rules. */
export const FORWARD_MARK = 'ferry-forward';

/** Ports forwarded. */
export const FORWARD_PORTS = [80, 443] as const;

/** The forwarder: listens on a free port per forwarded port, copies to the target, half-closes. */
const FORWARDER = [
  'import asyncio, json, sys',
  'target, ttl, state = sys.argv[1], float(sys.argv[2]), sys.argv[3]',
  'async def pipe(r, w):',
  '    try:',
  '        while True:',
  '            d = await r.read(65536)',
  '            if not d: break',
  '            w.write(d)',
  '            await w.drain()',
  '        if w.can_write_eof(): w.write_eof()',
  '    except Exception:',
  '        w.close()',
  'def handler(port):',
  '    async def h(cr, cw):',
  '        try:',
  '            tr, tw = await asyncio.wait_for(asyncio.open_connection(target, port), 10)',
  '        except Exception:',
  '            cw.close()',
  '            return',
  '        await asyncio.gather(pipe(cr, tw), pipe(tr, cw))',
  '        tw.close()',
  '        cw.close()',
  '    return h',
  'async def main():',
  '    ports = {}',
  `    for p in (${FORWARD_PORTS.join(', ')}):`,
  "        s = await asyncio.start_server(handler(p), '0.0.0.0', 0, reuse_address=True)",
  '        ports[p] = s.sockets[0].getsockname()[1]',
  "    with open(state, 'w') as f: json.dump(ports, f)",
  '    await asyncio.sleep(ttl)',
  'asyncio.run(main())',
  '',
].join('\n');

/** Deletes every rule marked {@link FORWARD_MARK} (v4 and v6); prints each. */
export const DELETE_RULES = $`for t in iptables ip6tables; do command -v "$t" >/dev/null || continue; { "$t" -t nat -S PREROUTING 2>/dev/null || true; } | { grep -F -- ${`--comment ${FORWARD_MARK}`} || true; } | sed 's/^-A /-D /' | while IFS= read -r line; do read -ra a <<<"$line"; "$t" -t nat "\${a[@]}" && echo "$t $line"; done; done`;

/**
 * Starts forwarding to `target` for `ttl` seconds, detached: the wrapper adds
 * the rules once the forwarder listens, and deletes them when it ends (TTL,
 * TERM from `--stop`). An earlier forwarding is stopped first. Prints the ports.
 */
export function startForwardCommand(target: string, ttl: number): Command {
  const d = FORWARD_DIR;
  const wrapper = $`set -u
d=${d}; target=${target}; ttl=${ttl}
cleanup() { trap - EXIT TERM INT; kill "$py" 2>/dev/null || true; ${DELETE_RULES} >/dev/null 2>&1 || true; rm -f "$d/pid" "$d/ports"; }
python3 "$d/forwarder.py" "$target" "$ttl" "$d/ports" & py=$!
trap cleanup EXIT TERM INT
for _ in $(seq 100); do [ -s "$d/ports" ] && break; sleep 0.05; done
for p in ${[...FORWARD_PORTS]}; do
  to=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$d/ports" "$p")
  iptables -t nat -I PREROUTING -p tcp --dport "$p" -m comment --comment ${FORWARD_MARK} -j REDIRECT --to-ports "$to"
  if command -v ip6tables >/dev/null; then ip6tables -t nat -I PREROUTING -p tcp --dport "$p" -m comment --comment ${FORWARD_MARK} -j REDIRECT --to-ports "$to" 2>/dev/null || true; fi
done
# A connection opened before the rules (a browser's kept-alive one) would go on
# reaching the source's own proxy: closed, its client reconnects and is forwarded.
# ss -K reaches sockets of this network namespace only: a proxy in a container keeps its own.
if command -v ss >/dev/null; then
  ss -K -H -t state established '( sport = :80 or sport = :443 )' and not dst 127.0.0.0/8 and not dst '[::1]' 2>/dev/null | wc -l >"$d/closed" || true
fi
echo ready >"$d/ready"
wait "$py"`;
  // umask: the forwarder's files (its script, log, ports) are root's alone, 0600.
  return $`d=${d}
umask 077
install -d -m 0700 "$d"
if [ -s "$d/pid" ]; then kill -TERM -- -"$(cat "$d/pid")" 2>/dev/null || true; sleep 0.2; fi
${DELETE_RULES} >/dev/null
rm -f "$d/ready" "$d/ports" "$d/closed"
printf '%s' ${FORWARDER} >"$d/forwarder.py"
printf '%s\\n' ${wrapper.render()} >"$d/forward.sh"
setsid bash "$d/forward.sh" </dev/null >"$d/forward.log" 2>&1 &
echo $! >"$d/pid"
for _ in $(seq 100); do [ -e "$d/ready" ] && break; kill -0 "$(cat "$d/pid")" 2>/dev/null || break; sleep 0.05; done
[ -e "$d/ready" ] || { cat "$d/forward.log" >&2; exit 1; }
cat "$d/ports"; echo; iptables -t nat -S PREROUTING | grep -F -- ${FORWARD_MARK}
if [ -s "$d/closed" ]; then echo "closed $(cat "$d/closed") open connection(s) to 80 and 443"; fi`;
}

/** Stops forwarding: the forwarder's process group, then any rule left; prints what it removed. */
export const STOP_FORWARD = $`d=${FORWARD_DIR}
if [ -s "$d/pid" ]; then p=$(cat "$d/pid"); if kill -TERM -- -"$p" 2>/dev/null; then echo "stopped forwarder $p"; fi; for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done; fi
${DELETE_RULES}
rm -f "$d/pid" "$d/ports" "$d/ready"`;

/** Tools forwarding needs on the source. */
export const FORWARD_TOOLS = $`for t in iptables python3 setsid; do command -v "$t" >/dev/null || { echo "missing: $t"; exit 1; }; done; iptables -t nat -S PREROUTING >/dev/null`;

/** One request to the source's address from the target, as a client would: `<status> <bytes> <domain>` as {@link parseHttpLine} reads. */
export function forwardProbeCommand(sourceAddress: string, app: Arg): Command {
  const vhost = $`/home/dokku/${app}/VHOST`;
  return $`vhost=$(head -n 1 ${vhost} 2>/dev/null || true); if [ -z "$vhost" ]; then echo '- -'; exit 0; fi; got=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 -H "Host: $vhost" http://${sourceAddress}/ 2>/dev/null || true); echo "\${got:-000 0} $vhost"`;
}

const task = defineTask({
  name: 'forward',
  summary:
    "forward the source's web ports (80, 443) to the target while DNS moves, or stop forwarding",
  runsOn: 'host',
  roleParams: ['to'],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      to: { type: 'string', description: 'The role forwarded to (the target).' },
      mode: {
        enum: ['check', 'start', 'stop'],
        default: 'start',
        description:
          'check: the source can forward (before the cut-over); start: forward for the TTL of --forward; stop: end forwarding.',
      },
    },
  },
  actions: { tools: [], start: [], probe: ['app'], stop: [] },
  plan({ host, params, roles, options }) {
    const h = host!.name;
    const target = params.to ? roles[params.to] : undefined;
    if (params.mode === 'stop') {
      return [
        {
          kind: 'remote',
          id: 'stop',
          host: h,
          command: STOP_FORWARD,
          why: 'the forwarder and its iptables rules go; the source answers with its own proxy again',
          changes: true,
        },
      ];
    }
    const tools: PlannedAction = {
      kind: 'remote',
      id: 'tools',
      host: h,
      command: FORWARD_TOOLS,
      expect: 'exit 0: iptables (nat), python3, setsid',
    };
    if (params.mode === 'check' || !target) return [tools];
    const ttl = options.forward?.ttlSeconds ?? 86400;
    return [
      tools,
      {
        kind: 'remote',
        id: 'start',
        host: h,
        command: startForwardCommand(target.address, ttl),
        why: `connections to ${h}'s ports 80 and 443 from other hosts go to ${target.name} (${target.address}) for ${ttl} s or until \`ferry forward ${h} --stop\``,
        expect: 'the forwarder ports, then the iptables rules marked ferry-forward',
        changes: true,
      },
      {
        kind: 'remote',
        id: 'probe',
        host: target.name,
        command: forwardProbeCommand(host!.address, P.app),
        forEach: 'app',
        where: 'the first running app with a domain, from the target to the source address',
        expect: 'an HTTP status below 500: the target answered through the source',
      },
    ];
  },
});

async function run(rt: RuntimeOf<typeof task>): Promise<StepOutputs> {
  const host = rt.ctx.host!.name;
  const { params, options } = rt.ctx;
  if (params.mode === 'stop') {
    const out = (await rt.exec('stop')).stdout.trim();
    rt.task.log(out || 'nothing was forwarding');
    rt.task.hostState(host, 'not forwarding: its own proxy answers on 80 and 443 again');
    return { stopped: out.split('\n').filter((l) => l !== '') };
  }
  const tools = await rt.exec('tools', {}, { allowCodes: [0, 1] });
  if (tools.code !== 0) {
    throw new StopError(`${host} cannot forward: ${tools.stdout.trim() || tools.stderr.trim()}`, {
      hint: 'Install iptables and python3 there, or run without --forward.',
    });
  }
  if (params.mode === 'check' || !rt.has('start')) return { forwarding: false };
  const target = rt.ctx.roles[params.to ?? '']!;
  const started = (await rt.exec('start')).stdout.trim();
  const ttl = options.forward?.ttlSeconds ?? 86400;
  rt.task.log(`forwarding ${host}:80,443 to ${target.name}: ${started.split('\n')[0]}`);
  const closed = /^closed (\d+) /m.exec(started);
  if (closed && closed[1] !== '0') {
    rt.task.log(
      `closed ${closed[1]} connection(s) opened before: their clients reconnect, forwarded`,
    );
  }
  let app: { name: string } | undefined;
  try {
    app = rt.manifest().apps.find((a) => a.deployed && a.running !== 'false');
  } catch {
    // forwarding on its own (`ferry forward`): no manifest, no app to probe
    app = undefined;
  }
  if (app) {
    const r = parseHttpLine((await rt.exec('probe', { app: app.name })).stdout);
    if (r && answered(r.code))
      rt.task.log(`http://${r.vhost}/ at ${host} answered ${r.code} by ${target.name}`);
    else if (r)
      rt.task.warn(
        `http://${r.vhost}/ at ${host} answered ${r.code || 'nothing'} through the forwarder`,
      );
  }
  const until = new Date(Date.now() + ttl * 1000).toISOString();
  rt.task.hostState(
    host,
    `forwarding its ports 80 and 443 to ${target.name} until ${until} (\`ferry forward ${host} --stop\` ends it)`,
  );
  return { forwarding: true, until, to: target.name };
}

export default task.runs(run);
