/**
 * `dokku url APP` / `dokku urls APP` (00_dokku-standard subcommands/url(s)
 * over the domains-urls trigger): the app's vhosts as http URLs (the lab
 * proxy listens on port 80), or, without vhosts, the host's address and the
 * web listener's port.
 */
import { join } from 'node:path';
import { appUrls } from '../deploy.js';
import { type Command, DOKKU_ROOT, labConfig, println, readOr, verifyAppBash } from '../lib.js';

function urlsOf(app: string): string[] {
  const urls = appUrls(app);
  if (urls.length > 0) return urls;
  const port = readOr(join(DOKKU_ROOT, app, 'PORT.web.1')).trim();
  return port === '' ? [] : [`http://${labConfig().address}:${port}`];
}

const url: Command = async (args) => {
  verifyAppBash(args[0]);
  const first = urlsOf(args[0] ?? '')[0];
  if (first !== undefined) println(first);
};

const urls: Command = async (args) => {
  verifyAppBash(args[0]);
  for (const u of urlsOf(args[0] ?? '')) println(u);
};

export const commands: Record<string, Command> = { url, urls };
