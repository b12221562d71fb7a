import { afterEach, describe, expect, it } from 'vitest';
import { AlertProcessor, type ApiTrigger } from '../../../src/bridge/alert-processor.ts';
import { DedupeStore } from '../../../src/bridge/dedupe-store.ts';
import { DeviceRegistry } from '../../../src/bridge/device-registry.ts';
import { BridgeMetrics } from '../../../src/bridge/metrics.ts';
import { ApiRejectedError, ApiTransientError, TokenRejectedError } from '../../../src/api/errors.ts';
import { encode, toAlertMessage, type StatusMessage } from '../../../src/relay/wire.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import type { TriggerResult } from '../../../src/incident/types.ts';
import { sampleAlert } from '../relay/sample-alert.ts';

type Answer = () => Promise<TriggerResult>;

/** An API double that answers from a script, one entry per call, and records what it was asked. */
class ScriptedApi implements ApiTrigger {
  calls: { callflow: string; variables: Record<string, unknown> }[] = [];
  script: Answer[] = [];
  trigger(callflow: string, variables: Record<string, unknown>): Promise<TriggerResult> {
    this.calls.push({ callflow, variables });
    const next = this.script.shift() ?? (() => Promise.resolve({ id: `exec-${this.calls.length}`, message: 'ok' }));
    return next();
  }
}

const stores: DedupeStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function setup(options: { giveUpMs?: number; maxInFlight?: number } = {}) {
  const clock = new FakeClock();
  const api = new ScriptedApi();
  const store = new DedupeStore({ path: ':memory:', instance: 'me', leaseMs: 10_000, clock });
  store.open();
  stores.push(store);
  const sent: { deviceId: string; status: StatusMessage }[] = [];
  const metrics = new BridgeMetrics({ connectedDevices: () => 0, inFlight: () => 0, brokerConnected: () => true });
  const processor = new AlertProcessor({
    registry: new DeviceRegistry({ 'truck-042': {}, 'truck-043': { callflow: 'fleet_flow_v1' } }),
    store,
    api,
    publish: (deviceId, status) => sent.push({ deviceId, status }),
    metrics,
    templates: {},
    callflow: { name: 'company_dataconnect_v1', test_name: null },
    retry: { baseMs: 1000, capMs: 8000, giveUpMs: options.giveUpMs ?? 60_000 },
    maxInFlight: options.maxInFlight ?? 16,
    clock,
    logger: silentLogger(),
    random: () => 1,
  });
  const states = (alertId: string) => sent.filter((s) => s.status.alertId === alertId).map((s) => s.status.state);
  return { clock, api, store, sent, metrics, processor, states };
}

const topic = (deviceId: string) => `sos/v1/${deviceId}/alert`;

describe('AlertProcessor', () => {
  it('answers accepted, then triggered with the API id; a resend is answered from the store, not triggered again', async () => {
    const { processor, api, clock, sent, states, metrics } = setup();
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    expect(states(alert.alertId)).toEqual(['accepted', 'triggered']);
    expect(sent.at(-1)).toMatchObject({ deviceId: 'truck-042', status: { state: 'triggered', apiId: 'exec-1' } });
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    expect(states(alert.alertId)).toEqual(['accepted', 'triggered', 'triggered']);
    expect(sent.at(-1)?.status.apiId).toBe('exec-1');
    expect(api.calls).toHaveLength(1);
    expect(metrics.duplicates.get()).toBe(1);
  });

  it('a copy arriving while the first is at the API is not triggered a second time', async () => {
    const { processor, api, clock, states } = setup();
    let answer: (r: TriggerResult) => void = () => undefined;
    api.script.push(() => new Promise((resolve) => (answer = resolve)));
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    expect(api.calls).toHaveLength(1);
    answer({ id: 'exec-7', message: 'ok' });
    await clock.advanceAsync(0);
    expect(states(alert.alertId)).toEqual(['accepted', 'accepted', 'triggered']);
  });

  it('retries transient failures with backoff, honouring Retry-After, and then triggers once', async () => {
    const { processor, api, clock, states } = setup();
    api.script.push(
      () => Promise.reject(new ApiTransientError('503', { status: 503 })),
      () => Promise.reject(new ApiTransientError('429', { status: 429, retryAfterMs: 5000 })),
    );
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    expect(api.calls).toHaveLength(1);
    await clock.advanceAsync(999);
    expect(api.calls).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(api.calls).toHaveLength(2);
    // Backoff would allow 2 s; the server asked for 5 s.
    await clock.advanceAsync(4999);
    expect(api.calls).toHaveLength(2);
    await clock.advanceAsync(1);
    expect(api.calls).toHaveLength(3);
    expect(states(alert.alertId)).toEqual(['accepted', 'triggered']);
  });

  it('gives up for now with `failed` after give_up, so the device retries later and the alert can be claimed again', async () => {
    const { processor, api, clock, states, store } = setup({ giveUpMs: 5000 });
    api.script = Array.from({ length: 10 }, () => () => Promise.reject(new ApiTransientError('503', { status: 503 })));
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(10_000);
    expect(states(alert.alertId)).toEqual(['accepted', 'failed']);
    expect(store.stateOf(alert.alertId)).toMatchObject({ state: 'failed' });
    api.script = [];
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    expect(states(alert.alertId)).toEqual(['accepted', 'failed', 'accepted', 'triggered']);
  });

  it('the API refusing the alert is final; the API refusing the bridge\'s credentials is not', async () => {
    const { processor, api, clock, sent } = setup();
    api.script.push(() => Promise.reject(new ApiRejectedError('code -2: unknown callflow', { status: 400, apiCode: -2 })));
    const a = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(a)));
    await clock.advanceAsync(0);
    expect(sent.at(-1)?.status).toMatchObject({ alertId: a.alertId, state: 'rejected', reason: 'api_rejected' });
    processor.handle(topic('truck-042'), encode(toAlertMessage(a)));
    await clock.advanceAsync(0);
    expect(sent.at(-1)?.status).toMatchObject({ state: 'rejected', reason: 'api_rejected' });
    expect(api.calls).toHaveLength(1);

    api.script.push(() => Promise.reject(new TokenRejectedError('invalid_client', { status: 401 })));
    const b = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(b)));
    await clock.advanceAsync(0);
    expect(sent.at(-1)?.status).toMatchObject({ alertId: b.alertId, state: 'failed', reason: 'api_credentials' });
  });

  it('authorizes: payload device must be the topic device and be registered; test alerts need a test callflow', async () => {
    const { processor, api, clock, sent, metrics } = setup();
    const spoof = sampleAlert({ deviceId: 'truck-043' });
    processor.handle(topic('truck-042'), encode(toAlertMessage(spoof)));
    const stranger = sampleAlert({ deviceId: 'van-9' });
    processor.handle(topic('van-9'), encode(toAlertMessage(stranger)));
    const test = sampleAlert({ test: true });
    test.initiation = { ...test.initiation, gesture: 'test_hold', test: true };
    processor.handle(topic('truck-042'), encode(toAlertMessage(test)));
    await clock.advanceAsync(0);
    expect(api.calls).toHaveLength(0);
    expect(sent.map((s) => [s.deviceId, s.status.state, s.status.reason])).toEqual([
      ['truck-042', 'rejected', 'device_mismatch'],
      ['van-9', 'rejected', 'unknown_device'],
      ['truck-042', 'rejected', 'no_test_callflow'],
    ]);
    expect(metrics.received.get()).toBe(3);
  });

  it('uses the registry\'s callflow over the one the device asks for', async () => {
    const { processor, api, clock } = setup();
    processor.handle(topic('truck-043'), encode(toAlertMessage(sampleAlert({ deviceId: 'truck-043', callflow: 'something_else' }))));
    await clock.advanceAsync(0);
    expect(api.calls[0]?.callflow).toBe('fleet_flow_v1');
  });

  it('does not let a bad copy cancel a real alert: garbage under a known alertId gets no answer', async () => {
    const { processor, clock, sent, metrics } = setup();
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    const before = sent.length;
    processor.handle(topic('truck-042'), Buffer.from(JSON.stringify({ alertId: alert.alertId, junk: true })));
    await clock.advanceAsync(0);
    expect(sent.length).toBe(before);
    expect(metrics.rejected.get({ reason: 'invalid_payload' })).toBe(1);
  });

  it('never throws on garbage and ignores topics that are not alerts', () => {
    const { processor, metrics } = setup();
    for (const payload of ['', '{', 'null', '[1,2]', '\u0000']) processor.handle(topic('truck-042'), Buffer.from(payload));
    processor.handle('sos/v1/truck-042/presence', Buffer.from('{}'));
    processor.handle('something/else', Buffer.from('{}'));
    expect(metrics.received.get()).toBe(5);
    expect(metrics.rejected.get({ reason: 'invalid_payload' })).toBe(5);
  });

  it('keeps at most max_in_flight requests at the API; the rest wait their turn', async () => {
    const { processor, api, clock, states } = setup({ maxInFlight: 2 });
    const answers: ((r: TriggerResult) => void)[] = [];
    for (let i = 0; i < 3; i++) api.script.push(() => new Promise((resolve) => answers.push(resolve)));
    const alerts = [sampleAlert(), sampleAlert(), sampleAlert()];
    for (const a of alerts) processor.handle(topic('truck-042'), encode(toAlertMessage(a)));
    await clock.advanceAsync(0);
    expect(api.calls).toHaveLength(2);
    answers[0]!({ id: 'x1', message: 'ok' });
    await clock.advanceAsync(0);
    expect(api.calls).toHaveLength(3);
    answers[1]!({ id: 'x2', message: 'ok' });
    answers[2]!({ id: 'x3', message: 'ok' });
    await clock.advanceAsync(0);
    for (const a of alerts) expect(states(a.alertId)).toEqual(['accepted', 'triggered']);
  });

  it('on stop, hands back alerts waiting for a retry as `failed` so another bridge can take them', async () => {
    const { processor, api, clock, states, store } = setup();
    api.script.push(() => Promise.reject(new ApiTransientError('503', { status: 503 })));
    const alert = sampleAlert();
    processor.handle(topic('truck-042'), encode(toAlertMessage(alert)));
    await clock.advanceAsync(0);
    await processor.stop(1000);
    expect(states(alert.alertId)).toEqual(['accepted', 'failed']);
    expect(store.stateOf(alert.alertId)).toMatchObject({ state: 'failed', reason: 'bridge_stopping' });
    expect(api.calls).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});
