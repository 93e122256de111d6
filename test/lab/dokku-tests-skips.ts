/**
 * Dokku unit tests (tests/unit/*.bats) the lab's emulator cannot run, each
 * with its reason. The `dokku-tests` runner marks them skipped; every other
 * test of the files it runs must pass. An entry without `releases` applies to
 * every release whose tests/unit has a test of that name.
 */
import type { SkippedTest } from './dokku-tests-lib.js';

const DOCKER_HUB = 'pulls an image from Docker Hub (needs the internet and Docker)';
const DOCKERFILE_HUB =
  'builds a Dockerfile whose FROM image is on Docker Hub (needs the internet and Docker)';
const SMOKE_APP = 'clones https://github.com/dokku/smoke-test-app.git (needs the internet)';
const SMOKE_RELEASE =
  'downloads a smoke-test-app release archive from github.com (needs the internet)';
const SMOKE_PLUGIN_BUILD =
  "installs the smoke-test plugin's master, whose install trigger builds its Go binaries in `docker run golang:1.7.1` (needs Docker and the internet)";
const RUN = 'runs a one-off container with `dokku run` (needs Docker)';
const NETRC =
  'manages and reads ~/.netrc with the netrc tool Dokku installs (dokku/netrc is not on a lab host)';
const NGINX_RESOURCE =
  'sets and reads nginx:set/nginx:report and resource:limit/resource:report (the nginx-vhosts and resource plugins are not emulated; the lab proxy is not nginx) and buildpacks:add (no buildpack runs)';

/** The list, by file. */
export const DOKKU_TEST_SKIPS: SkippedTest[] = [
  { file: 'apps_1', test: '(apps) apps:rename', reason: NGINX_RESOURCE },
  { file: 'apps_2', test: '(apps) apps:clone (no app)', reason: NGINX_RESOURCE },
  {
    file: 'apps_2',
    test: '(apps) apps:clone --skip-deploy',
    reason:
      "expects nginx's default server (404) for a clone that has no nginx.conf yet; the lab proxy is not nginx and answers 502 for any app it knows",
    releases: ['0.37.9'],
  },

  { file: 'config', test: '(config) global config (herokuish)', reason: RUN },
  { file: 'config', test: '(config) global config (dockerfile)', reason: DOCKERFILE_HUB },
  {
    file: 'config',
    test: '(config) install migrates a pre-0.38 ENV file before plugins read it',
    reason:
      'asserts through checks:report: the checks plugin (zero-downtime checks of running containers) is not emulated',
  },

  {
    file: 'plugin',
    test: '(plugin) plugin:install, plugin:disable, plugin:update plugin:uninstall',
    reason: SMOKE_PLUGIN_BUILD,
  },
  {
    file: 'plugin',
    test: '(plugin) plugin:install, plugin:disable, plugin:update plugin:uninstall (with file://)',
    reason: SMOKE_PLUGIN_BUILD,
  },
  {
    file: 'plugin',
    test: '(plugin) plugin:install, plugin:disable, plugin:uninstall as non-root user failure',
    reason: SMOKE_PLUGIN_BUILD,
  },
  { file: 'plugin', test: '(plugin) plugin:update [errors]', reason: SMOKE_PLUGIN_BUILD },

  {
    file: 'network',
    test: '(network) dont re-attach to network',
    reason: `${DOCKERFILE_HUB}, then runs web=3 and worker=1 (the emulator runs web.1 only)`,
  },
  {
    file: 'network',
    test: '(network) handle single-udp app',
    reason: `deploys kylemanna/openvpn: ${DOCKER_HUB}; and checks:disable (the checks plugin is not emulated)`,
  },

  {
    file: 'ps-general-1',
    test: '(ps) ps:inspect',
    reason: `${DOCKERFILE_HUB}; then reads docker inspect of the container`,
  },
  {
    file: 'ps-general-1',
    test: '(ps:scale) procfile commands extraction',
    reason:
      "sources the ps plugin's bash `functions` file, which the emulator (its ps plugin is TypeScript) does not ship",
  },
  {
    file: 'ps-general-1',
    test: '(ps:scale) update formations from Procfile',
    reason: 'deploys the nodejs-express app, whose npm dependencies a buildpack would install',
  },
  {
    file: 'ps-general-1',
    test: '(ps:restart-policy) deployed policy',
    reason: `${DOCKERFILE_HUB}; then reads the restart policy from docker inspect`,
  },
  { file: 'ps-general-2', test: '(ps:rebuild) old app name', reason: SMOKE_APP },
  { file: 'ps-general-2', test: '(ps:scale) console-only app', reason: RUN },
  {
    file: 'ps-general-2',
    test: '(ps:set) procfile-path',
    reason: "reads `dokku logs` (docker logs of the app's containers: needs Docker)",
  },
  {
    file: 'ps-general-2',
    test: '(ps:scale) remove zerod processes',
    reason:
      'sets builder-herokuish:set allowed (the herokuish builder is not emulated: no buildpack runs)',
  },

  {
    file: 'git_1',
    test: '(git) keep-git-dir',
    reason: 'looks inside the container with `dokku enter` (docker exec: needs Docker)',
  },
  {
    file: 'git_3',
    test: '(git) git:allow-host',
    reason: "scans github.com's ssh host key (needs the internet)",
  },
  { file: 'git_3', test: '(git) git:auth', reason: NETRC },
  { file: 'git_3', test: '(git) git:auth repairs world-readable .netrc', reason: NETRC },
  { file: 'git_3', test: '(git) git:auth unset preserves 0600 on remaining .netrc', reason: NETRC },
  { file: 'git_3', test: '(git) git:auth-status', reason: NETRC },
  ...[
    'new [--no-build noarg]',
    'new [--no-build branch]',
    'new [--no-build tag]',
    'new [--no-build commit]',
    'new [--build noarg]',
    'new [--build branch]',
    'new [--build tag]',
    'new [--build commit]',
    'existing [--no-build noarg]',
    'existing [--no-build branch]',
    'existing [--no-build tag]',
    'existing [--no-build annotated-tag]',
    'existing [--no-build commit]',
    'existing [--build noarg]',
    'existing [--build branch]',
    'existing [--build tag]',
    'existing [--build commit]',
  ].map((s): SkippedTest => ({ file: 'git_3', test: `(git) git:sync ${s}`, reason: SMOKE_APP })),
  { file: 'git_3', test: '(git:sync) --skip-deploy-branch', reason: SMOKE_APP },
  { file: 'git_3', test: '(git:sync) --build --skip-deploy-branch', reason: SMOKE_APP },
  { file: 'git_3', test: '(git:sync) --build-if-changes --skip-deploy-branch', reason: SMOKE_APP },
  ...[
    '[normal]',
    '--force',
    '[normal-custom-branch]',
    '[normal-git-init]',
    '[normal-cnb]',
    '[onbuild]',
    'labels correctly',
  ].map(
    (s): SkippedTest => ({ file: 'git_4', test: `(git) git:from-image ${s}`, reason: DOCKER_HUB }),
  ),
  {
    file: 'git_4',
    test: '(git) git:from-image [failing deploy]',
    reason: 'builds its images with `docker image build` (needs Docker)',
  },
  ...['[tar]', '[tar.gz]', '[zip]', '[stdin-file]', '[stdin-curl]'].map(
    (s): SkippedTest => ({
      file: 'git_5',
      test: `(git) git:from-archive ${s}`,
      reason: SMOKE_RELEASE,
    }),
  ),
  ...[
    '[normal]',
    '[normal-git-init]',
    '[normal-cnb]',
    '[failing deploy]',
    '[onbuild]',
    'labels correctly',
  ].map(
    (s): SkippedTest => ({
      file: 'git_6',
      test: `(git) git:load-image ${s}`,
      reason: `${DOCKER_HUB} (or builds one with docker image build) before saving it for git:load-image`,
    }),
  ),
  { file: 'git_7', test: '(git) push tags and branches', reason: SMOKE_APP },
];
