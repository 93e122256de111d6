import test from 'ava';
import { isSecretKey, MASK, redact, redactJson } from '../../src/run/redact.js';
import { formatBytes, formatDuration, formatProgress, formatRate } from '../../src/util/format.js';

test('redact: passwords in DSNs of any scheme', (t) => {
  t.is(
    redact('DSN postgres://postgres:0123abcd@dokku-postgres-db:5432/db ok'),
    `DSN postgres://postgres:${MASK}@dokku-postgres-db:5432/db ok`,
  );
  t.is(redact('redis://:pw@h:6379'), `redis://:${MASK}@h:6379`);
  t.is(redact('mysql://root:p%40ss@h/db'), `mysql://root:${MASK}@h/db`);
  t.is(redact('https://example.test/path'), 'https://example.test/path');
  t.is(redact('ssh://git@github.com/x'), 'ssh://git@github.com/x', 'no password, nothing to hide');
});

test('redact: KEY=value forms for secret-looking keys only', (t) => {
  t.is(redact('SECRET_KEY_BASE=abc PORT=5000'), `SECRET_KEY_BASE=${MASK} PORT=5000`);
  t.is(redact("export DB_PASSWORD='x y'"), `export DB_PASSWORD='${MASK}'`);
  t.is(redact('API_TOKEN="a\\"b" NAME=web'), `API_TOKEN="${MASK}" NAME=web`);
  t.is(
    redact("--env=AWS_SECRET_ACCESS_KEY='k' --env=APP='web'"),
    `--env=AWS_SECRET_ACCESS_KEY='${MASK}' --env=APP='web'`,
  );
  t.is(redact('MONKEY=banana'), 'MONKEY=banana');
  t.is(redact('EMPTY_PASSWORD='), 'EMPTY_PASSWORD=');
});

test('redact: config:show / config:set lines and JSON pairs', (t) => {
  t.is(
    redact(
      '-----> Setting config vars\n       DATABASE_URL:  postgres://u:p@h/d\n       FOO:           bar\n',
    ),
    `-----> Setting config vars\n       DATABASE_URL:  ${MASK}\n       FOO:           bar\n`,
  );
  t.is(redact('{"GITHUB_TOKEN":"ghp_x","A":"1"}'), `{"GITHUB_TOKEN":"${MASK}","A":"1"}`);
});

test('redact: private keys', (t) => {
  const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY-----';
  t.is(redact(`key:\n${pem}\nafter`), `key:\n-----BEGIN OPENSSH PRIVATE KEY----- ${MASK}\nafter`);
});

test('isSecretKey', (t) => {
  for (const k of [
    'DATABASE_URL',
    'DOKKU_POSTGRES_AQUA_URL',
    'SENTRY_DSN',
    'apiKey',
    'dbPassword',
    'KEY',
    'SESSION_SECRET',
    'RAILS_MASTER_KEY',
  ])
    t.true(isSecretKey(k), k);
  for (const k of [
    'PORT',
    'MONKEY',
    'NODE_ENV',
    'GIT_REV',
    'KEYBOARD_LAYOUT',
    'WEB_CONCURRENCY',
    'SSH_KEY_PATH',
  ])
    t.false(isSecretKey(k), k);
});

test('redactJson: secret keys, env maps, nested strings', (t) => {
  t.deepEqual(
    redactJson({
      apps: ['web'],
      password: 'x',
      env: { web: { PORT: '5000', NODE_ENV: 'production' } },
      note: 'url postgres://a:b@h/d',
      count: 3,
    }),
    {
      apps: ['web'],
      password: MASK,
      env: { web: { PORT: MASK, NODE_ENV: MASK } },
      note: `url postgres://a:${MASK}@h/d`,
      count: 3,
    },
  );
});

test('formats', (t) => {
  t.is(formatBytes(0), '0 B');
  t.is(formatBytes(999), '999 B');
  t.is(formatBytes(1_634_000_000), '1.63 GB');
  t.is(formatBytes(350_000_000), '350 MB');
  t.is(formatRate(33_300_000), '33.3 MB/s');
  t.is(formatDuration(850), '850ms');
  t.is(formatDuration(12_340), '12.3s');
  t.is(formatDuration(245_000), '4m05s');
  t.is(formatDuration(3_725_000), '1h02m');
  t.is(
    formatProgress(812_000_000, 1_624_000_000, 0, 12_000),
    '812 MB / 1.62 GB (50%) · 67.7 MB/s · ETA 12.0s',
  );
  t.is(formatProgress(812_000_000, undefined, 0, 12_000), '812 MB · 67.7 MB/s · 12.0s');
  t.is(formatProgress(10, 10, 0, 1000), '10 B / 10 B (100%) · 10 B/s · done');
  t.is(formatProgress(0, 10, 5, 5), '0 B / 10 B (0%) · – MB/s · ETA ?');
});

test('redact: every value of a config:set line, and password flags', (t) => {
  t.is(
    redact("ssh root@new dokku config:set --no-restart web FOO=bar B='x y' PORT=5000"),
    `ssh root@new dokku config:set --no-restart web FOO=${MASK} B='${MASK}' PORT=${MASK}`,
  );
  t.is(redact('FOO=bar'), 'FOO=bar', 'outside config:set only secret-looking keys');
  t.is(
    redact('dokku postgres:create db --password hunter2 -i postgres'),
    `dokku postgres:create db --password ${MASK} -i postgres`,
  );
  t.is(redact("x --root-password='a b'"), `x --root-password=${MASK}`);
});
