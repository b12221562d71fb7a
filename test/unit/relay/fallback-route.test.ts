import { describe, expect, it } from 'vitest';
import { composeRoute, FallbackRoute } from '../../../src/relay/fallback-route.ts';
import { RelayRejectedError, RelayTimeoutError, RelayUnavailableError } from '../../../src/relay/errors.ts';
import { ApiRejectedError, ApiTransientError, TokenRejectedError } from '../../../src/api/errors.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import type { AlertRoute, AlertSnapshot, TriggerResult } from '../../../src/incident/types.ts';
import { sampleAlert } from './sample-alert.ts';

class ScriptedRoute implements AlertRoute {
  readonly name: string;
  calls: string[] = [];
  readonly #outcome: () => Promise<TriggerResult>;
  constructor(name: string, outcome: () => Promise<TriggerResult>) {
    this.name = name;
    this.#outcome = outcome;
  }
  send(alert: AlertSnapshot): Promise<TriggerResult> {
    this.calls.push(alert.alertId);
    return this.#outcome();
  }
}

const ok = (id: string) => () => Promise.resolve({ id, message: 'ok' });
const fail = (e: Error) => () => Promise.reject(e);

describe('FallbackRoute (relay_then_direct)', () => {
  it('does not touch the second way when the first delivers', async () => {
    const relay = new ScriptedRoute('relay', ok('r'));
    const direct = new ScriptedRoute('direct', ok('d'));
    const route = new FallbackRoute({ primary: relay, secondary: direct, logger: silentLogger() });
    expect(route.name).toBe('relay_then_direct');
    await expect(route.send(sampleAlert())).resolves.toEqual({ id: 'r', message: 'ok' });
    expect(direct.calls).toHaveLength(0);
  });

  it('goes direct with the same alert after an ack timeout or a dead broker', async () => {
    for (const e of [new RelayTimeoutError(15_000, false), new RelayUnavailableError()]) {
      const relay = new ScriptedRoute('relay', fail(e));
      const direct = new ScriptedRoute('direct', ok('d'));
      const route = new FallbackRoute({ primary: relay, secondary: direct, logger: silentLogger() });
      const alert = sampleAlert();
      await expect(route.send(alert)).resolves.toEqual({ id: 'd', message: 'ok' });
      expect(direct.calls).toEqual([alert.alertId]);
    }
  });

  it('does not go direct while the bridge has accepted the alert and is still working on it (no second flow)', async () => {
    const pending = new RelayTimeoutError(15_000, true);
    const direct = new ScriptedRoute('direct', ok('d'));
    const route = new FallbackRoute({ primary: new ScriptedRoute('relay', fail(pending)), secondary: direct, logger: silentLogger() });
    await expect(route.send(sampleAlert())).rejects.toBe(pending);
    expect(pending.retryable).toBe(true);
    expect(direct.calls).toHaveLength(0);
  });

  it('goes direct when the bridge does not know the device, but not when the API refused the alert itself', async () => {
    const direct1 = new ScriptedRoute('direct', ok('d'));
    const r1 = new FallbackRoute({ primary: new ScriptedRoute('relay', fail(new RelayRejectedError('unknown_device', ''))), secondary: direct1, logger: silentLogger() });
    await expect(r1.send(sampleAlert())).resolves.toMatchObject({ id: 'd' });

    const direct2 = new ScriptedRoute('direct', ok('d'));
    const r2 = new FallbackRoute({ primary: new ScriptedRoute('relay', fail(new RelayRejectedError('api_rejected', 'code -2'))), secondary: direct2, logger: silentLogger() });
    await expect(r2.send(sampleAlert())).rejects.toMatchObject({ retryable: false, reason: 'api_rejected' });
    expect(direct2.calls).toHaveLength(0);
  });

  it('stays retryable when the second way is broken for good (no credentials), so the SOS is not given up', async () => {
    const route = new FallbackRoute({
      primary: new ScriptedRoute('relay', fail(new RelayTimeoutError(15_000, false))),
      secondary: new ScriptedRoute('direct', fail(new TokenRejectedError('invalid_client'))),
      logger: silentLogger(),
    });
    await expect(route.send(sampleAlert())).rejects.toMatchObject({ retryable: true });
  });

  it('is permanent when the API refused the alert on the second way', async () => {
    const route = new FallbackRoute({
      primary: new ScriptedRoute('relay', fail(new RelayTimeoutError(15_000, false))),
      secondary: new ScriptedRoute('direct', fail(new ApiRejectedError('code -2', { status: 400, apiCode: -2 }))),
      logger: silentLogger(),
    });
    await expect(route.send(sampleAlert())).rejects.toBeInstanceOf(ApiRejectedError);
  });

  it('passes the first failure through when there is no second way', async () => {
    const e = new RelayTimeoutError(15_000, false);
    const route = new FallbackRoute({ primary: new ScriptedRoute('relay', fail(e)), secondary: null, logger: silentLogger() });
    expect(route.name).toBe('relay');
    await expect(route.send(sampleAlert())).rejects.toBe(e);
  });
});

describe('composeRoute', () => {
  it('builds each configured route from the ways the device has', async () => {
    const direct = new ScriptedRoute('direct', fail(new ApiTransientError('503', { status: 503 })));
    const relay = new ScriptedRoute('relay', ok('r'));
    const log = silentLogger();
    expect(composeRoute('direct', { direct, relay }, log)).toBe(direct);
    expect(composeRoute('relay', { direct, relay }, log)).toBe(relay);
    expect(composeRoute('relay_then_direct', { direct, relay }, log).name).toBe('relay_then_direct');
    const dtr = composeRoute('direct_then_relay', { direct, relay }, log);
    await expect(dtr.send(sampleAlert())).resolves.toMatchObject({ id: 'r' });
    expect(() => composeRoute('relay', { direct, relay: null }, log)).toThrow(/relay/);
  });
});
