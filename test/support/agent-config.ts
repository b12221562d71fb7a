import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AgentConfigInput } from '../../src/config/agent-schema.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './emulator.ts';

/** A valid agent config against an emulator at `apiUrl`, with a temporary outbox; `overrides` replace sections. */
export function agentConfig(apiUrl: string, overrides: Partial<AgentConfigInput> = {}): AgentConfigInput & { outbox: { path: string } } {
  const dir = mkdtempSync(join(tmpdir(), 'sos-agent-test-'));
  return {
    device: { id: 'truck-042' },
    caller: { full_name: 'Joe User', phone_number: '6615555555' },
    vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
    api: { base_url: apiUrl, client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, connect_timeout_ms: 1000, response_timeout_ms: 2000 },
    callflow: { name: 'company_dataconnect_v1', test_name: 'company_test_v1' },
    gps: { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 },
    feedback: { terminal: false },
    log: { level: 'silent' },
    ...overrides,
    outbox: { path: join(dir, 'outbox.db'), ...(overrides.outbox ?? {}) },
  };
}

/** Writes it as YAML and returns the file path. */
export function writeAgentConfig(config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'sos-agent-cfg-'));
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, stringify(config));
  return file;
}
