import { describe, expect, it } from 'vitest';
import { RelayRoute, type StatusLink } from '../../../src/relay/relay-route.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { silentLogger } from '../../../src/shared/logger.ts';
import { ErrorCodes, type SosError } from '../../../src/shared/errors.ts';
import type { AlertMessage, StatusMessage } from '../../../src/relay/wire.ts';
import { sampleAlert } from './sample-alert.ts';

/** A link double: records what was published and lets the test play the bridge. */
class FakeLink implements StatusLink {
  connected = true;
  published: AlertMessage[] = [];
  failPublish: Error | null = null;
  #listeners = new Set<(s: StatusMessage) => void>();
  publishAlert(message: AlertMessage): Promise<void> {
    if (this.failPublish) return Promise.reject(this.failPublish);
    this.published.push(message);
    return Promise.resolve();
  }
  onStatus(listener: (s: StatusMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  say(status: Omit<StatusMessage, 'at'>): void {
    for (const l of this.#listeners) l({ ...status, at: 1 });
  }
}

function setup(ackTimeoutMs = 15_000) {
  const clock = new FakeClock();
  const link = new FakeLink();
  const route = new RelayRoute({ link, ackTimeoutMs, clock, logger: silentLogger() });
  return { clock, link, route };
}

async function settle<T>(p: Promise<T>): Promise<{ value?: T; error?: SosError }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: error as SosError }),
  );
}

describe('RelayRoute', () => {
  it('resolves only on `triggered` for its alertId, not on the PUBACK or on `accepted`', async () => {
    const { link, route, clock } = setup();
    const alert = sampleAlert();
    let done = false;
    const sent = route.send(alert).finally(() => (done = true));
    await clock.advanceAsync(0);
    expect(link.published.map((m) => m.alertId)).toEqual([alert.alertId]);
    link.say({ alertId: alert.alertId, state: 'accepted' });
    link.say({ alertId: sampleAlert().alertId, state: 'triggered', apiId: 'other' });
    await clock.advanceAsync(1000);
    expect(done).toBe(false);
    link.say({ alertId: alert.alertId, state: 'triggered', apiId: 'exec-1', message: 'ok' });
    await expect(sent).resolves.toEqual({ id: 'exec-1', message: 'ok' });
    expect(route.pending()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('turns `rejected` into a permanent error with the reason', async () => {
    const { link, route } = setup();
    const alert = sampleAlert();
    const sent = settle(route.send(alert));
    link.say({ alertId: alert.alertId, state: 'rejected', reason: 'api_rejected', message: 'code -2' });
    const { error } = await sent;
    expect(error?.code).toBe(ErrorCodes.RELAY_REJECTED);
    expect(error?.retryable).toBe(false);
    expect((error as unknown as { reason: string }).reason).toBe('api_rejected');
  });

  it('keeps a rejection about the bridge\'s own setup (unknown device, no caller) retryable, slowly: the alert is not lost', async () => {
    for (const reason of ['unknown_device', 'no_caller'] as const) {
      const { link, route } = setup();
      const alert = sampleAlert();
      const sent = settle(route.send(alert));
      link.say({ alertId: alert.alertId, state: 'rejected', reason, message: 'not registered' });
      const { error } = await sent;
      expect(error).toMatchObject({ code: ErrorCodes.RELAY_REJECTED, retryable: true, retryAfterMs: 60_000, reason });
    }
  });

  it('turns `failed` into a retryable error', async () => {
    const { link, route } = setup();
    const alert = sampleAlert();
    const sent = settle(route.send(alert));
    link.say({ alertId: alert.alertId, state: 'failed', reason: 'api_unavailable' });
    const { error } = await sent;
    expect(error?.code).toBe(ErrorCodes.RELAY_FAILED);
    expect(error?.retryable).toBe(true);
  });

  it('fails retryably after the ack timeout, saying whether the bridge had accepted the alert', async () => {
    const { link, route, clock } = setup(15_000);
    const alert = sampleAlert();
    const sent = settle(route.send(alert));
    link.say({ alertId: alert.alertId, state: 'accepted' });
    await clock.advanceAsync(14_999);
    await clock.advanceAsync(1);
    const { error } = await sent;
    expect(error?.code).toBe(ErrorCodes.RELAY_TIMEOUT);
    expect(error?.retryable).toBe(true);
    expect((error as unknown as { bridgeAccepted: boolean }).bridgeAccepted).toBe(true);
    // A late answer for an alert nobody waits on any more changes nothing and throws nothing.
    link.say({ alertId: alert.alertId, state: 'triggered', apiId: 'late' });
    expect(route.pending()).toBe(0);
  });

  it('a retry with the same alertId waits for the same answer', async () => {
    const { link, route } = setup();
    const alert = sampleAlert();
    const a = route.send(alert);
    const b = route.send(alert);
    link.say({ alertId: alert.alertId, state: 'triggered', apiId: 'exec-9' });
    await expect(a).resolves.toMatchObject({ id: 'exec-9' });
    await expect(b).resolves.toMatchObject({ id: 'exec-9' });
    expect(link.published.map((m) => m.alertId)).toEqual([alert.alertId, alert.alertId]);
  });

  it('fails at once, retryably, when the link is down, so a fallback need not wait a full ack timeout', async () => {
    const { link, route, clock } = setup();
    link.connected = false;
    const { error } = await settle(route.send(sampleAlert()));
    expect(error?.code).toBe(ErrorCodes.RELAY_UNAVAILABLE);
    expect(error?.retryable).toBe(true);
    expect(clock.pending()).toBe(0);
    link.connected = true;
    link.failPublish = new Error('client disconnecting');
    const second = await settle(route.send(sampleAlert()));
    expect(second.error?.code).toBe(ErrorCodes.RELAY_UNAVAILABLE);
    expect(clock.pending()).toBe(0);
  });

  it('refuses an alert too large for the relay before publishing it', async () => {
    const { link, route } = setup();
    const alert = sampleAlert({ caller: { full_name: 'x'.repeat(20_000), phone_number: '6615555555' } });
    const { error } = await settle(route.send(alert));
    expect(error?.code).toBe(ErrorCodes.RELAY_REJECTED);
    expect(link.published).toHaveLength(0);
  });

  it('stops waiting when the outbox aborts the attempt', async () => {
    const { route, clock } = setup();
    const ac = new AbortController();
    const sent = settle(route.send(sampleAlert(), ac.signal));
    ac.abort(new Error('stopping'));
    const { error } = await sent;
    expect(String(error)).toMatch(/stopping/);
    expect(route.pending()).toBe(0);
    expect(clock.pending()).toBe(0);
  });
});
