import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent } from '../app/agent.ts';
import { pressSteps, ScriptedButtonSource } from '../button/scripted.ts';
import { Bridge } from '../bridge/bridge.ts';
import { agentConfigSchema, type AgentConfigInput } from '../config/agent-schema.ts';
import { bridgeConfigSchema } from '../config/bridge-schema.ts';
import { parseConfig } from '../config/load.ts';
import { Emulator } from '../emulator/server.ts';
import { systemClock } from '../shared/clock.ts';
import { createLogger } from '../shared/logger.ts';
import { PrettyLogStream } from '../shared/pretty-log.ts';
import { ExitCode, writeLine, type Command } from './io.ts';

const HELP = `usage: sos-agent demo [--direct] [--auto] [--keep]

A complete local demo, no setup and no network. It starts, all on loopback:
  the API emulator            (stands in for the Emergency WorkFlow API),
  the bridge with an embedded MQTT broker (the cloud half that holds the API credentials),
  the agent                   (keyboard as the SOS button, a replayed GPS track),
and the agent sends each alert over MQTT to the bridge (route relay_then_direct: straight to the API if the
bridge does not answer). Every trigger the emulator receives is printed. Nothing leaves this machine.
  --direct  the agent calls the API itself (route direct), no broker or bridge
  --auto    press the button by script (one hold), wait for the API's answer, and exit (for CI and screencasts)
  --keep    keep the temporary folder (outbox, dedupe store)`;

const DEMO_CLIENT_ID = 'demo-client';
const DEMO_CLIENT_SECRET = 'demo-secret';

/** The demo's NMEA track, beside the sources in a checkout; absent in the single binary (then: static). */
function demoTrack(): string | null {
  const file = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../config/demo-track.nmea');
  return existsSync(file) ? file : null;
}

export const command: Command = async (argv, io) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      direct: { type: 'boolean', default: false },
      auto: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    writeLine(io.stdout, HELP);
    return ExitCode.OK;
  }
  const out = io.stdout;
  const dir = mkdtempSync(join(tmpdir(), 'sos-agent-demo-'));
  const emulator = new Emulator({ host: '127.0.0.1', port: 0, clientId: DEMO_CLIENT_ID, clientSecret: DEMO_CLIENT_SECRET });
  await emulator.start();
  const logger = createLogger({ level: 'warn', destination: new PrettyLogStream(io.stderr) });
  let bridge: Bridge | null = null;
  if (!values.direct) {
    const devices = join(dir, 'devices.yaml');
    writeFileSync(devices, 'demo-truck: {}\n');
    const bridgeConfig = parseConfig(bridgeConfigSchema, {
      broker: { url: null, host: '127.0.0.1', port: 0, share_group: null },
      api: { base_url: emulator.url, client_id: DEMO_CLIENT_ID, client_secret: DEMO_CLIENT_SECRET },
      callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
      devices: { file: devices },
      dedupe: { path: join(dir, 'bridge.db') },
      http: { port: null },
      log: { level: 'warn' },
    });
    bridge = new Bridge({ config: bridgeConfig, logger: logger.child({ part: 'bridge' }) });
    await bridge.start();
    await bridge.whenUp();
  }
  const track = demoTrack();
  const raw: AgentConfigInput = {
    device: { id: 'demo-truck' },
    caller: { full_name: 'Joe User', phone_number: '6615555555' },
    vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    api: { base_url: emulator.url, client_id: DEMO_CLIENT_ID, client_secret: DEMO_CLIENT_SECRET },
    callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
    gps: track
      ? { source: 'replay', file: track, rate: 1, loop: true, fallback: { latitude: 39.28527, longitude: -76.61247, uncertainty_m: 50 } }
      : { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 },
    button: { source: 'terminal' },
    press: { hold_ms: 2000, cancel_window_s: values.auto ? 0 : 5 },
    outbox: { path: join(dir, 'outbox.db') },
    ...(bridge ? { route: 'relay_then_direct' as const, relay: { broker_url: bridge.brokerUrl, ack_timeout_s: 5 } } : {}),
    log: { level: 'warn' },
  };
  const config = parseConfig(agentConfigSchema, raw);
  const button = values.auto ? new ScriptedButtonSource({ clock: systemClock, steps: pressSteps(config.press.hold_ms + 200, 500), source: 'demo-script' }) : undefined;
  const agent = new Agent({ config, logger, terminal: io.stderr, env: io.env, ...(button ? { button } : {}) });

  let answered: (ok: boolean) => void = () => {};
  const done = new Promise<boolean>((r) => (answered = r));
  emulator.onTrigger((t) => {
    writeLine(out, `\n── emulator received trigger ${t.id} for ${t.callflow} at ${t.receivedAt}`);
    writeLine(out, JSON.stringify(t.variables, null, 2));
  });
  agent.onAlert((e) => {
    if (e.state === 'delivered') {
      writeLine(out, `── alert ${e.alertId} delivered: the API's id is ${e.apiId}`);
      answered(true);
    } else if (e.state === 'rejected') {
      writeLine(out, `── alert ${e.alertId} rejected: ${e.error?.message}`);
      answered(false);
    }
  });

  writeLine(out, `sos-agent demo: API emulator at ${emulator.url} (loopback only), outbox in ${dir}`);
  writeLine(
    out,
    bridge
      ? `route: relay over MQTT (embedded broker at ${bridge.brokerUrl}) → bridge → API; direct to the API if the bridge does not answer`
      : 'route: direct (the agent holds the API credentials)',
  );
  writeLine(out, `GPS: ${track ? `replaying ${track}` : 'static location'}; callflow ${config.callflow.name}`);
  try {
    await agent.start();
    if (values.auto) {
      writeLine(out, `pressing the button by script: hold ${config.press.hold_ms + 200} ms`);
      const ok = await Promise.race([done, io.stopSignal.then(() => false)]);
      return ok ? ExitCode.OK : ExitCode.REJECTED;
    }
    writeLine(out, `Hold SPACE for ${config.press.hold_ms / 1000} s to send an alert (press again within ${config.press.cancel_window_s} s to cancel); Ctrl-C quits.`);
    await io.stopSignal;
    return ExitCode.OK;
  } finally {
    await agent.stop();
    await bridge?.stop();
    await emulator.stop();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
};
