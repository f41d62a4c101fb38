/**
 * `canopy-update` on the gateway (bundled into /opt/canopy/lib/canopy-update.mjs):
 *
 *   canopy-update --boot                  (canopy-update.service) finish a cut trial, install a bundle from /boot/firmware/canopy-update/
 *   canopy-update <bundle.tar.gz>         install a bundle (its .sha256 beside it)
 *   canopy-update <https://…/bundle.tar.gz>  download it and its .sha256, then install
 *   canopy-update --status                the active release and the last update
 *
 * The health check: the unit is active and GET /healthz answers 200, within
 * UPDATE_HEALTH_TIMEOUT_MS (env CANOPY_UPDATE_HEALTH_TIMEOUT_MS).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { devicePaths } from './paths.ts';
import { activeRelease, applyUpdate, bootUpdate, readUpdateState, UPDATE_BUNDLE_BYTES_MAX, UPDATE_HEALTH_TIMEOUT_MS_DEFAULT, UpdateError, type UpdateDeps } from './update.ts';

const paths = devicePaths();
const UNIT = 'canopy-leaf.service';

function healthUrl(): string | undefined {
  try {
    const config = JSON.parse(readFileSync(paths.leafConfig, 'utf8')) as { http_port?: number; http_host?: string };
    const port = config.http_port ?? 8222;
    if (port === 0) return undefined;
    const host = config.http_host === undefined || config.http_host === '0.0.0.0' || config.http_host === '::' ? '127.0.0.1' : config.http_host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
  } catch {
    return 'http://127.0.0.1:8222/healthz';
  }
}

const deps: UpdateDeps = {
  async restartLeaf() {
    spawnSync('systemctl', ['restart', UNIT], { stdio: 'inherit' });
  },
  async healthCheck() {
    const timeoutMs = Number(process.env['CANOPY_UPDATE_HEALTH_TIMEOUT_MS'] ?? UPDATE_HEALTH_TIMEOUT_MS_DEFAULT);
    const deadline = Date.now() + timeoutMs;
    const url = healthUrl();
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      const active = spawnSync('systemctl', ['is-active', UNIT], { encoding: 'utf8' }).stdout.trim();
      if (active !== 'active') last = `${UNIT} is ${active}`;
      else if (url === undefined) return { ok: true };
      else {
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
          if (response.status === 200) return { ok: true };
          last = `${url} answered ${response.status}`;
        } catch (err) {
          last = `${url}: ${(err as Error).message}`;
        }
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    return { ok: false, reason: `not healthy within ${timeoutMs} ms: ${last}` };
  },
  print: (line) => console.log(line),
};

async function download(url: string): Promise<string> {
  const dir = join(paths.canopyData, 'incoming');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, basename(new URL(url).pathname));
  for (const [from, to] of [[url, file], [`${url}.sha256`, `${file}.sha256`]] as const) {
    const response = await fetch(from);
    if (!response.ok) throw new UpdateError(`${from} answered ${response.status}`);
    const body = Buffer.from(await response.arrayBuffer());
    if (body.length > UPDATE_BUNDLE_BYTES_MAX) throw new UpdateError(`${from} is larger than UPDATE_BUNDLE_BYTES_MAX (${UPDATE_BUNDLE_BYTES_MAX})`);
    writeFileSync(to, body);
  }
  return file;
}

async function main(arg: string | undefined): Promise<number> {
  if (arg === '--boot') {
    await bootUpdate(paths, deps);
    return 0;
  }
  if (arg === '--status') {
    console.log(JSON.stringify({ active: activeRelease(paths) ?? 'factory', last: readUpdateState(paths) ?? null }, null, 2));
    return 0;
  }
  if (arg === undefined || arg.startsWith('-')) {
    console.error('usage: canopy-update <bundle.tar.gz | https://…/bundle.tar.gz> | --boot | --status');
    return 2;
  }
  const bundle = /^https?:\/\//.test(arg) ? await download(arg) : arg;
  const result = await applyUpdate(bundle, paths, deps);
  return result.outcome === 'committed' ? 0 : 1;
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof UpdateError ? `canopy-update: ${err.message}` : err);
    process.exit(1);
  },
);
