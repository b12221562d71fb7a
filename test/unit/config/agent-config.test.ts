import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../../../src/config/agent-schema.ts';
import { AGENT_ENV_SECRETS, loadConfig, parseConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/shared/errors.ts';
import { runCli } from '../../support/cli.ts';
import { REPO_ROOT } from '../../support/fixtures.ts';

const minimal = {
  device: { id: 'truck-042' },
  caller: { full_name: 'Joe User', phone_number: '6615555555' },
  gps: { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 },
};

function issuesOf(raw: unknown): string[] {
  try {
    parseConfig(agentConfigSchema, raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sos-config-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('agent configuration', () => {
  it('fills every default from a minimal file', () => {
    const cfg = parseConfig(agentConfigSchema, minimal);
    expect(cfg.api.base_url).toBe('https://api-sandbox.rapidsos.com');
    expect(cfg.callflow.name).toBe('company_dataconnect_v1');
    expect(cfg.press.hold_ms).toBe(2000);
    expect(cfg.press.cancel_window_s).toBe(5);
    expect(cfg.button.source).toBe('terminal');
    expect(cfg.outbox.max_backoff_s).toBe(30);
    expect(cfg.route).toBe('direct');
  });

  it('maps the environment names to the API hosts and accepts loopback http only', () => {
    const base = (u: string) => parseConfig(agentConfigSchema, { ...minimal, api: { base_url: u } }).api.base_url;
    expect(base('staging')).toBe('https://api-staging.rapidsos.com');
    expect(base('production')).toBe('https://api.rapidsos.com');
    expect(base('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(base('http://[::1]:9/')).toBe('http://[::1]:9');
    expect(issuesOf({ ...minimal, api: { base_url: 'http://10.0.0.5' } })).toEqual([
      'api.base_url: plain http is allowed only on loopback (127.0.0.1, ::1, localhost); use https for 10.0.0.5',
    ]);
  });

  it('normalizes +1 E.164 and formatted numbers to the seed\'s 10 digits, and refuses others', () => {
    const phone = (p: string) => parseConfig(agentConfigSchema, { ...minimal, caller: { full_name: 'J', phone_number: p } }).caller.phone_number;
    expect(phone('+16615555555')).toBe('6615555555');
    expect(phone('(661) 555-5555')).toBe('6615555555');
    expect(phone('1 661 555 5555')).toBe('6615555555');
    for (const bad of ['12345', '+446615555555', '1615555555', '6611555555']) {
      expect(issuesOf({ ...minimal, caller: { full_name: 'J', phone_number: bad } })[0]).toMatch(/^caller\.phone_number: expected a 10-digit NANP/);
    }
  });

  it('lists every wrong field with its path, unknown keys included', () => {
    const issues = issuesOf({
      device: { id: 'truck 042' },
      caller: { full_name: 'Joe', phone_number: '12' },
      api: { client_id: 'x', clinet_secret: 'y' },
      gps: { source: 'gpsd', port: 99999 },
      press: { hold_ms: 5 },
      route: 'relay',
      surprise: true,
    });
    const paths = issues.map((i) => i.split(':')[0]);
    expect(paths).toEqual(
      expect.arrayContaining(['device.id', 'caller.phone_number', 'api.clinet_secret', 'gps.port', 'press.hold_ms', 'relay', 'surprise']),
    );
    expect(issues.find((i) => i.startsWith('api.clinet_secret'))).toMatch(/unknown key/);
  });

  it('refuses plain mqtt:// or ws:// to a broker off this machine (password and caller in clear text)', () => {
    const relay = (broker_url: string) => issuesOf({ ...minimal, route: 'relay', relay: { broker_url, password: 'p' } });
    expect(relay('mqtt://broker.example.com:1883')).toEqual(['relay.broker_url: plain mqtt:// is allowed only on loopback; use mqtts:// for broker.example.com']);
    expect(relay('ws://10.0.0.2/mqtt')[0]).toMatch(/^relay\.broker_url: plain ws:\/\/ is allowed only on loopback/);
    expect(relay('mqtts://broker.example.com:8883')).toEqual([]);
    expect(relay('mqtt://127.0.0.1:1883')).toEqual([]);
    expect(relay('http://broker.example.com')[0]).toMatch(/^relay\.broker_url: expected an mqtts:/);
  });

  it('names a missing section and an unknown gps source', () => {
    expect(issuesOf({ gps: { source: 'sputnik' } })).toEqual([
      'device: required (object) but missing',
      'caller: required (object) but missing',
      "gps.source: Invalid discriminator value. Expected 'static' | 'gpsd' | 'nmea' | 'replay'",
    ]);
  });

  it('checks variables templates for unknown placeholders', () => {
    const issues = issuesOf({ ...minimal, callflows: { flow_a: { variables: { user: { name: '{{caller.nme}}' } } } } });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^callflows\.flow_a\.variables\.user\.name: unknown placeholder \{\{caller\.nme\}\}/);
  });

  it('takes the client secret from SOS_API_CLIENT_SECRET when the file leaves it out', async () => {
    const file = tmpFile('a.yaml', JSON.stringify({ ...minimal, api: { client_id: 'c' } }));
    const cfg = await loadConfig(agentConfigSchema, file, { SOS_API_CLIENT_SECRET: 's3cret' }, AGENT_ENV_SECRETS);
    expect(cfg.api.client_secret).toBe('s3cret');
    const file2 = tmpFile('b.yaml', JSON.stringify({ ...minimal, api: { client_id: 'c', client_secret: 'from-file' } }));
    const cfg2 = await loadConfig(agentConfigSchema, file2, { SOS_API_CLIENT_SECRET: 's3cret' }, AGENT_ENV_SECRETS);
    expect(cfg2.api.client_secret).toBe('from-file');
  });
});

describe('sos-agent config', () => {
  it('check: the shipped example is valid', async () => {
    const r = await runCli(['config', 'check', join(REPO_ROOT, 'config/agent.example.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('check: exits 2 and prints every wrong field with its path', async () => {
    const file = tmpFile('bad.yaml', 'device: { id: "a b" }\ncaller: { full_name: J, phone_number: "1" }\ngps: { source: static, latitude: 91, longitude: 0, uncertainty_m: 5 }\nbogus: 1\n');
    const r = await runCli(['config', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid configuration in ${file}`);
    for (const path of ['device.id:', 'caller.phone_number:', 'gps.latitude:', 'bogus: unknown key']) expect(r.stderr).toContain(path);
  });

  it('check: a missing file and broken YAML are named, exit 2', async () => {
    const missing = await runCli(['config', 'check', '/nonexistent/agent.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read /nonexistent/agent.yaml (ENOENT)');
    const broken = await runCli(['config', 'check', tmpFile('broken.yaml', 'device: [1,\n')]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('not valid YAML');
  });

  it('check: a YAML syntax error names the line but never echoes it (it may hold a secret)', async () => {
    const file = tmpFile('secret.yaml', 'device: { id: a }\napi:\n  client_secret: Xy7:kP9 q#2: Prod-Secret\n');
    const r = await runCli(['config', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not valid YAML at line 3, column \d+ \(\w+\)/);
    expect(r.stderr).not.toContain('Prod-Secret');
    expect(r.stderr).not.toContain('kP9');
  });

  it('schema: prints a JSON Schema with defaults and descriptions', async () => {
    const r = await runCli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, { properties?: Record<string, { default?: unknown; description?: string }> }>; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.press?.properties?.hold_ms?.default).toBe(2000);
    expect(schema.properties.api?.properties?.base_url?.description).toMatch(/sandbox/);
  });
});
