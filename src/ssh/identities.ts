/**
 * Which keys a connection offers, in the order OpenSSH offers them
 * (sshconnect2.c, pubkey_prepare):
 *
 *  1. agent keys that are also identity files (IdentityFile, or the file's
 *     `.pub` when only the agent holds the private half), in the agent's order;
 *  2. the agent's other keys, in its order, unless IdentitiesOnly;
 *  3. identity files the agent does not hold, in the configured order.
 *
 * The agent's keys go to ssh2 through one agent of ours that lists them in
 * that order (ssh2 offers an agent's keys in the order it lists them) and
 * signs with the real agent; the files' keys follow as separate methods.
 * A private key never leaves this machine: signatures are all the server sees.
 */
import { readFile } from 'node:fs/promises';
import ssh2, {
  type AgentAuthMethod,
  type IdentityCallback,
  type ParsedKey,
  type PublicKeyAuthMethod,
  type SignCallback,
  type SigningRequestOptions,
} from 'ssh2';

// ssh2 is CommonJS: its classes come from the default export.
const { BaseAgent, OpenSSHAgent, utils } = ssh2;
type OpenSSHAgentInstance = InstanceType<typeof OpenSSHAgent>;

/** An identity file as read here. */
export interface IdentityFile {
  path: string;
  /** The public key blob (from `path.pub`, or from an unencrypted private key). */
  publicBlob?: Buffer;
  /** The private key, when it exists and opens without a passphrase. */
  privateKey?: Buffer;
  /** Why the file cannot be used by itself (missing, encrypted, unreadable). */
  unusable?: string;
}

/** One key to offer, in order. */
export type Offer =
  | { kind: 'agent'; blob: Buffer; comment: string; matchesFile?: string }
  | { kind: 'file'; path: string; privateKey: Buffer };

/**
 * The keys to offer, in OpenSSH's order, from the agent's list (its order)
 * and the identity files (configured order).
 */
export function orderIdentities(
  agentKeys: readonly { blob: Buffer; comment: string }[],
  files: readonly IdentityFile[],
  identitiesOnly: boolean,
): Offer[] {
  const matching: Offer[] = [];
  const others: Offer[] = [];
  const inAgent = new Set<string>();
  for (const k of agentKeys) {
    const file = files.find((f) => f.publicBlob?.equals(k.blob));
    if (file) {
      inAgent.add(file.path);
      matching.push({ kind: 'agent', blob: k.blob, comment: k.comment, matchesFile: file.path });
    } else if (!identitiesOnly) {
      others.push({ kind: 'agent', blob: k.blob, comment: k.comment });
    }
  }
  const fileOffers: Offer[] = files.flatMap((f) =>
    !inAgent.has(f.path) && f.privateKey
      ? [{ kind: 'file' as const, path: f.path, privateKey: f.privateKey }]
      : [],
  );
  return [...matching, ...others, ...fileOffers];
}

/** Reads an identity file as ssh does: the private key, and its public half (`.pub` first). */
export async function readIdentityFile(path: string): Promise<IdentityFile> {
  const out: IdentityFile = { path };
  const pub = await readFile(`${path}.pub`, 'utf8').catch(() => undefined);
  if (pub !== undefined) {
    const k = utils.parseKey(pub);
    if (!(k instanceof Error)) out.publicBlob = k.getPublicSSH();
  }
  let priv: Buffer;
  try {
    priv = await readFile(path);
  } catch (e) {
    out.unusable =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'it does not exist'
        : `cannot read it (${(e as NodeJS.ErrnoException).code})`;
    return out;
  }
  const k = utils.parseKey(priv);
  if (k instanceof Error) {
    out.unusable = /encrypted|passphrase/i.test(k.message)
      ? 'it is encrypted: add it to ssh-agent (ssh-add) and ferry uses it from there'
      : `it is not a private key ferry can read (${k.message})`;
    return out;
  }
  // A public key named as an IdentityFile selects that key in the agent (ssh_config(5)).
  out.publicBlob ??= k.getPublicSSH();
  if (k.isPrivateKey()) out.privateKey = priv;
  else out.unusable = 'it is a public key: only the agent can use it';
  return out;
}

/** Lists an agent's keys (blob and comment, in its order). */
export function agentKeys(socket: string): Promise<{ blob: Buffer; comment: string }[]> {
  return new Promise((resolve, reject) => {
    new OpenSSHAgent(socket).getIdentities((err, keys) => {
      if (err) reject(err);
      else
        resolve(
          (keys ?? []).flatMap((k) =>
            'getPublicSSH' in k ? [{ blob: k.getPublicSSH(), comment: k.comment }] : [],
          ),
        );
    });
  });
}

/** An agent that lists the chosen keys in the chosen order and signs with the real agent. */
class OrderedAgent extends BaseAgent<ParsedKey> {
  private readonly real: OpenSSHAgentInstance;
  constructor(
    socket: string,
    private readonly keys: ParsedKey[],
  ) {
    super();
    this.real = new OpenSSHAgent(socket);
  }
  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    cb(undefined, this.keys);
  }
  sign(
    pubKey: ParsedKey,
    data: Buffer,
    options: SigningRequestOptions | SignCallback,
    cb?: SignCallback,
  ): void {
    if (typeof options === 'function') this.real.sign(pubKey, data, options);
    else this.real.sign(pubKey, data, options, cb);
  }
}

/** What a connection needs to authenticate: ssh2's auth methods, and what they offer (for messages). */
export interface AuthPlan {
  methods: (AgentAuthMethod | PublicKeyAuthMethod)[];
  offers: Offer[];
  /** Identity files that could not be used, and why. */
  skipped: { path: string; why: string }[];
}

/**
 * The authentication methods for ssh2 (`authHandler`), in OpenSSH's order,
 * from the agent socket (if any) and the identity files.
 */
export async function authPlan(opts: {
  username: string;
  identities: readonly string[];
  identitiesOnly: boolean;
  agent?: string | undefined;
}): Promise<AuthPlan> {
  const files = await Promise.all(opts.identities.map(readIdentityFile));
  let fromAgent: { blob: Buffer; comment: string }[] = [];
  if (opts.agent) {
    // An agent that is gone is no agent, as for ssh ("Could not open a connection to your authentication agent").
    fromAgent = await agentKeys(opts.agent).catch(() => []);
  }
  const offers = orderIdentities(fromAgent, files, opts.identitiesOnly);
  const methods: (AgentAuthMethod | PublicKeyAuthMethod)[] = [];
  const agentOffers = offers.filter(
    (o): o is Extract<Offer, { kind: 'agent' }> => o.kind === 'agent',
  );
  if (opts.agent && agentOffers.length > 0) {
    const parsed = agentOffers.flatMap((o) => {
      const k = utils.parseKey(o.blob);
      return k instanceof Error ? [] : [k];
    });
    methods.push({
      type: 'agent' as const,
      username: opts.username,
      agent: new OrderedAgent(opts.agent, parsed),
    });
  }
  for (const o of offers) {
    if (o.kind === 'file') {
      methods.push({ type: 'publickey' as const, username: opts.username, key: o.privateKey });
    }
  }
  const offered = new Set(
    offers.flatMap((o) => (o.kind === 'file' ? [o.path] : o.matchesFile ? [o.matchesFile] : [])),
  );
  const skipped = files.flatMap((f) =>
    f.unusable && !offered.has(f.path) ? [{ path: f.path, why: f.unusable }] : [],
  );
  return { methods, offers, skipped };
}
