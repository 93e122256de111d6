import test from 'ava';
import { atoi, envEscape, formatEnvFile, marshalEnv, parseEnv } from '../lab/emulator/lib.js';

const env = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

test('godotenv 1.5.1: sorted lines, integers unquoted and normalised, trailing newline', (t) => {
  const text = formatEnvFile(env({ PORT: '5000', X: '007', NAME: 'a b', NEG: '-01', PLUS: '+3' }));
  t.is(text, 'NAME="a b"\nNEG=-1\nPLUS=3\nPORT=5000\nX=7\n');
});

test('godotenv 1.2.0 (before 0.37.8): everything quoted, no trailing newline', (t) => {
  t.is(formatEnvFile(env({ B: '1', A: 'x' }), false), 'A="x"\nB="1"');
});

test('values beyond int64 stay quoted strings', (t) => {
  t.is(atoi('9223372036854775807'), '9223372036854775807');
  t.is(atoi('9223372036854775808'), null);
  t.is(atoi(''), null);
  t.is(atoi('1e3'), null);
  t.is(marshalEnv(env({ BIG: '99999999999999999999' })), 'BIG="99999999999999999999"');
});

test('special characters are backslash-escaped', (t) => {
  t.is(envEscape('a\\b"c!d$e`f\ng\rh'), 'a\\\\b\\"c\\!d\\$e\\`f\\ng\\rh');
});

test('round trip through parseEnv keeps every value (but normalised integers)', (t) => {
  const values = {
    A: 'plain',
    B: 'with "quotes" and \\ backslash',
    C: `dollar $HOME and $${'{'}PATH} and \`tick\` !bang`,
    D: 'multi\nline\r\nvalue',
    E: '  spaces  ',
    F: '',
    G: "single 'quotes'",
    H: 'hash # not a comment',
    URL: 'postgres://postgres:pw@dokku-postgres-db:5432/db?sslmode=disable',
  };
  const back = parseEnv(formatEnvFile(env(values)));
  t.deepEqual(Object.fromEntries(back), values);
  t.is(parseEnv(formatEnvFile(env({ N: '0042' }))).get('N'), '42');
});

test('parseEnv reads what people write by hand: export, comments, single quotes', (t) => {
  const m = parseEnv(`# c\nexport A=1\nB='x $Y'\nC=unquoted # comment\nD="$${'{'}A}-z"\n`);
  t.is(m.get('A'), '1');
  t.is(m.get('B'), 'x $Y');
  t.is(m.get('C'), 'unquoted');
  t.is(m.get('D'), '1-z');
});
