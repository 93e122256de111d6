/**
 * A stream with this machine at one end (restore from an archive here): a
 * receiver that ends as soon as it has what it needs (tar -x at its
 * end-of-archive blocks) closes the pipe early; its exit status decides.
 */
import { PassThrough, Writable } from 'node:stream';
import test from 'ava';
import { RemoteError } from '../../src/errors.js';
import { controllerStream } from '../../src/run/runtime.js';
import type { Remote, RemoteProcess } from '../../src/ssh/remote.js';
import { $ } from '../../src/ssh/shell.js';
import type { StreamAction } from '../../src/tasks/types.js';

/** A remote whose receiving command takes one chunk, exits with `code`, and closes its stdin. */
function closingEarly(code: number): { remote: Remote; got: Buffer[] } {
  const got: Buffer[] = [];
  let exit: (v: { code: number; signal: null }) => void = () => {};
  let fail: (e: unknown) => void = () => {};
  const done = new Promise<{ code: number; signal: null }>((res, rej) => {
    exit = res;
    fail = rej;
  });
  done.catch(() => {});
  const stdin = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      cb();
      // the command has what it needs: it exits, and its channel closes before EOF is sent
      setImmediate(() => {
        if (code === 0) exit({ code: 0, signal: null });
        else
          fail(
            new RemoteError({
              host: 'new',
              command: 'tar -xf -',
              code,
              signal: null,
              stdout: '',
              stderr: 'tar: Unexpected EOF in archive\n',
            }),
          );
        stdin.destroy();
      });
    },
  });
  const proc: RemoteProcess = {
    stdin,
    stdout: new PassThrough().end() as never,
    stderr: new PassThrough().end() as never,
    done,
    kill: async () => {},
  };
  const remote = { spawn: async () => proc } as unknown as Remote;
  return { remote, got };
}

const action = (): StreamAction =>
  ({
    kind: 'stream',
    id: 'meta',
    from: 'controller',
    to: 'new',
    route: 'relay',
    // the sender ends a moment after its last byte (as tar pads its last record): the receiver is gone by then
    send: $`printf 'the whole archive'; sleep 0.3`,
    receive: $`tar -xf -`,
    why: '',
  }) as StreamAction;

const opts = () => ({
  onProgress: () => {},
  step: 'transfer',
  signal: new AbortController().signal,
});

test('a receiver that exits 0 before the pipe closes cleanly: the stream succeeded', async (t) => {
  const { remote, got } = closingEarly(0);
  const a = action();
  const r = await controllerStream(a, a.send, a.receive, async () => remote, opts());
  t.is(Buffer.concat(got).toString(), 'the whole archive');
  t.is(r.bytes, 'the whole archive'.length);
});

test('a receiver that fails as it closes: its error is the story, not "Premature close"', async (t) => {
  const { remote } = closingEarly(2);
  const a = action();
  const e = await t.throwsAsync(controllerStream(a, a.send, a.receive, async () => remote, opts()));
  t.true(e instanceof RemoteError, String(e));
  t.notRegex(e?.message ?? '', /Premature close/);
});
