/**
 * The one way dokku-ferry writes a shell command: the tagged template `$`.
 *
 *   $`tar -C ${dir} -cf - ${paths}`           every value quoted (arrays word by word)
 *   $`${compress} | ${hashed}`                a Command inside a Command is shell text
 *   $`dokku ps:report ${hole('app')}`         a value known only at run time: shown
 *                                             `<app>` in a plan, bound before it runs
 *   bashC($`exec 3<>/dev/tcp/${addr}/${port}`) an inner shell gets its values as
 *                                             positional parameters, never in its text
 *
 * A Command is data (its parts), not text: binding a hole replaces that part,
 * so no value is ever found or replaced by searching the text, and a command
 * still holding a hole cannot be rendered for a shell. Pure: no I/O.
 */
import { InternalError } from '../errors.js';
import { quote } from './quote.js';

/** A value a plan cannot know (an app of the manifest, an earlier capture): `<name>` until bound. */
export class Hole {
  constructor(readonly name: string) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new InternalError(`bad hole name "${name}"`);
  }
}

/** A hole named `name`: shown `<name>` in a plan, bound with {@link Command.bind}. */
export function hole(name: string): Hole {
  return new Hole(name);
}

type Word = string | number | Hole;

/** What `$` accepts between `${}`. */
export type Interpolation = Word | Command | readonly Word[];

type Part =
  | { kind: 'text'; text: string }
  | { kind: 'word'; word: string }
  | { kind: 'hole'; name: string }
  | { kind: 'cmd'; cmd: Command };

/** Values for holes, by name. */
export type Bindings = Readonly<Record<string, string>>;

/** A shell command line built by `$`; see the file's head. */
export class Command {
  private constructor(private readonly parts: readonly Part[]) {}

  /** @internal Builds a command from template pieces and values. */
  static template(strings: readonly string[], values: readonly Interpolation[]): Command {
    const parts: Part[] = [];
    const text = (t: string) => {
      if (t !== '') parts.push({ kind: 'text', text: t });
    };
    const word = (w: Word) =>
      parts.push(
        w instanceof Hole ? { kind: 'hole', name: w.name } : { kind: 'word', word: String(w) },
      );
    strings.forEach((s, i) => {
      text(s);
      if (i >= values.length) return;
      const v = values[i]!;
      if (v instanceof Command) parts.push({ kind: 'cmd', cmd: v });
      else if (Array.isArray(v)) {
        (v as readonly Word[]).forEach((w, j) => {
          if (j > 0) text(' ');
          word(w);
        });
      } else word(v as Word);
    });
    return new Command(parts);
  }

  /**
   * Shell text a person wrote as it is: a playbook's own `command` step. Never
   * built from a value (a name, a path, a remote's answer): use `$` for those.
   */
  static script(text: string): Command {
    return new Command([{ kind: 'text', text }]);
  }

  /** Names of the holes still open, sorted. */
  holes(): string[] {
    const out = new Set<string>();
    const walk = (c: Command) => {
      for (const p of c.parts) {
        if (p.kind === 'hole') out.add(p.name);
        else if (p.kind === 'cmd') walk(p.cmd);
      }
    };
    walk(this);
    return [...out].sort();
  }

  /**
   * Fills holes with values (each quoted as one word). Binding a name the
   * command has no hole for is a bug: it would mean a value went elsewhere.
   */
  bind(values: Bindings): Command {
    const open = new Set(this.holes());
    const stray = Object.keys(values).filter((k) => !open.has(k));
    if (stray.length > 0) {
      throw new InternalError(`no hole <${stray.join('>, <')}> in \`${this.toString()}\``);
    }
    return this.fill(values);
  }

  private fill(values: Bindings): Command {
    return new Command(
      this.parts.map((p): Part => {
        if (p.kind === 'hole' && Object.hasOwn(values, p.name)) {
          return { kind: 'word', word: values[p.name]! };
        }
        if (p.kind === 'cmd') return { kind: 'cmd', cmd: p.cmd.fill(values) };
        return p;
      }),
    );
  }

  /** The text a shell runs. A hole left open is a bug and throws. */
  render(): string {
    const open = this.holes();
    if (open.length > 0) {
      throw new InternalError(`\`${this.toString()}\` still holds <${open.join('>, <')}>`);
    }
    return this.toString();
  }

  /** The command as `ferry plan` shows it: holes as `<name>`. */
  toString(): string {
    return this.parts
      .map((p) =>
        p.kind === 'text'
          ? p.text
          : p.kind === 'word'
            ? quote(p.word)
            : p.kind === 'hole'
              ? `<${p.name}>`
              : p.cmd.toString(),
      )
      .join('');
  }

  toJSON(): string {
    return this.toString();
  }

  /**
   * The text of this command with every value (and hole) turned into a
   * positional parameter `"$n"`, counting from `first`; the values in order.
   */
  positional(first = 1): { text: string; args: Word[] } {
    const args: Word[] = [];
    const walk = (c: Command): string =>
      c.parts
        .map((p) => {
          switch (p.kind) {
            case 'text':
              return p.text;
            case 'cmd':
              return walk(p.cmd);
            default: {
              args.push(p.kind === 'hole' ? new Hole(p.name) : p.word);
              const n = first + args.length - 1;
              return n < 10 ? `"$${n}"` : `"\${${n}}"`;
            }
          }
        })
        .join('');
    return { text: walk(this), args };
  }
}

/** Builds a {@link Command}; every interpolated value is quoted. */
export function $(strings: TemplateStringsArray, ...values: Interpolation[]): Command {
  return Command.template(strings, values);
}

/**
 * `bash -c 'SCRIPT' _ VALUES…`: the script as another bash will parse it, its
 * values passed as positional parameters. A value spliced into the text of an
 * inner shell would be parsed again by it; a parameter never is.
 */
export function bashC(script: Command, shell = 'bash'): Command {
  const { text, args } = script.positional();
  return $`${Command.script(shell)} -c ${text} _ ${args}`;
}

/** Joins commands with a separator (` && `, ` | `, a newline). */
export function join(commands: readonly Command[], separator: string): Command {
  const sep = Command.script(separator);
  return (
    commands.reduce<Command | undefined>(
      (acc, c) => (acc === undefined ? c : $`${acc}${sep}${c}`),
      undefined,
    ) ?? Command.script('')
  );
}
