import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Emulator } from '../../../src/emulator/server.ts';
import { FakeClock } from '../../../src/shared/clock.ts';
import { startEmulator } from '../../support/emulator.ts';
import { addFault, getToken, tokenRequest, triggerRequest } from './helpers.ts';

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

async function started(opts: Parameters<typeof startEmulator>[0] = {}): Promise<{ emu: Emulator; token: string }> {
  emu = await startEmulator(opts);
  return { emu, token: await getToken(emu) };
}

describe('status faults', () => {
  it('fail the next N triggers with the status, code and Retry-After asked for, accept nothing, then recover', async () => {
    const { emu, token } = await started();
    expect((await addFault(emu, { target: 'trigger', times: 2, status: 503, code: -1, retryAfter: 7 })).status).toBe(201);
    for (let i = 0; i < 2; i++) {
      const res = await triggerRequest(emu, token);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(await res.json()).toEqual({ code: -1, message: expect.any(String) });
    }
    expect(emu.triggers()).toEqual([]);
    expect((await triggerRequest(emu, token)).status).toBe(200);
    expect(emu.stats()).toEqual({ tokenRequests: 1, triggerRequests: 3, accepted: 1 });
  });

  it('default to one 503 with code -1 and no Retry-After', async () => {
    const { emu, token } = await started();
    await addFault(emu, { target: 'trigger' });
    const res = await triggerRequest(emu, token);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toMatchObject({ code: -1 });
    expect((await triggerRequest(emu, token)).status).toBe(200);
  });

  it('can answer HTTP 200 with code -1 (a server error inside a success status)', async () => {
    const { emu, token } = await started();
    await addFault(emu, { target: 'trigger', status: 200, code: -1 });
    const res = await triggerRequest(emu, token);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ code: -1, message: expect.any(String) });
    expect(emu.triggers()).toEqual([]);
  });

  it('queue in the order they were added', async () => {
    const { emu, token } = await started();
    emu.addFault({ target: 'trigger', status: 500 });
    emu.addFault({ target: 'trigger', times: 2, status: 429, retryAfter: 1 });
    emu.addFault({ target: 'trigger', status: 502 });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await triggerRequest(emu, token)).status);
    expect(statuses).toEqual([500, 429, 429, 502, 200]);
  });

  it('apply before authentication: a faulted endpoint fails whatever is sent', async () => {
    const { emu } = await started();
    emu.addFault({ target: 'trigger', status: 502 });
    expect((await triggerRequest(emu, 'bad-token', 'not json')).status).toBe(502);
  });

  it('on the token endpoint fail token requests only', async () => {
    const { emu, token } = await started();
    await addFault(emu, { target: 'token', times: 1, status: 500, retryAfter: 2 });
    expect((await triggerRequest(emu, token)).status).toBe(200);
    const res = await tokenRequest(emu);
    expect(res.status).toBe(500);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.json()).toMatchObject({ code: -1 });
    expect((await tokenRequest(emu)).status).toBe(200);
    expect(emu.stats().tokenRequests).toBe(3);
  });
});

describe('drop faults', () => {
  it('close a trigger connection with no answer and do not accept the trigger', async () => {
    const { emu, token } = await started();
    await addFault(emu, { target: 'trigger', drop: true });
    await expect(triggerRequest(emu, token)).rejects.toThrow(TypeError);
    expect(emu.triggers()).toEqual([]);
    expect(emu.stats()).toMatchObject({ triggerRequests: 1, accepted: 0 });
    expect((await triggerRequest(emu, token)).status).toBe(200);
  });

  it('close a token connection with no answer', async () => {
    const { emu } = await started();
    emu.addFault({ target: 'token', drop: true, times: 2 });
    await expect(tokenRequest(emu)).rejects.toThrow(TypeError);
    await expect(tokenRequest(emu)).rejects.toThrow(TypeError);
    expect((await tokenRequest(emu)).status).toBe(200);
  });
});

describe('delay faults (on the injected clock)', () => {
  it('a slow answer: the trigger is accepted on arrival, the success comes delayMs later', async () => {
    const clock = new FakeClock();
    const { emu, token } = await started({ clock });
    await addFault(emu, { target: 'trigger', delayMs: 5000 });
    let answered = false;
    const pending = triggerRequest(emu, token).then((res) => {
      answered = true;
      return res;
    });
    await vi.waitFor(() => expect(emu.triggers()).toHaveLength(1));
    await clock.advanceAsync(4999);
    expect(answered).toBe(false);
    await clock.advanceAsync(1);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(emu.triggers()[0]!.id);
  });

  it('with a status: wait, then fail, accepting nothing', async () => {
    const clock = new FakeClock();
    const { emu, token } = await started({ clock });
    emu.addFault({ target: 'trigger', delayMs: 1000, status: 504 });
    const pending = triggerRequest(emu, token);
    await vi.waitFor(() => expect(emu.stats().triggerRequests).toBe(1));
    await clock.advanceAsync(1000);
    expect((await pending).status).toBe(504);
    expect(emu.triggers()).toEqual([]);
  });

  it('with drop: wait, then close without an answer', async () => {
    const clock = new FakeClock();
    const { emu, token } = await started({ clock });
    emu.addFault({ target: 'trigger', delayMs: 1000, drop: true });
    const pending = triggerRequest(emu, token);
    pending.catch(() => undefined);
    await vi.waitFor(() => expect(emu.stats().triggerRequests).toBe(1));
    await clock.advanceAsync(1000);
    await expect(pending).rejects.toThrow(TypeError);
    expect(emu.triggers()).toEqual([]);
  });

  it('a slow token answer still issues a working token', async () => {
    const clock = new FakeClock();
    const { emu } = await started({ clock });
    emu.addFault({ target: 'token', delayMs: 2000 });
    const pending = tokenRequest(emu);
    await vi.waitFor(() => expect(emu.stats().tokenRequests).toBe(2));
    await clock.advanceAsync(2000);
    const res = await pending;
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    expect((await triggerRequest(emu, access_token)).status).toBe(200);
  });

  it('stop() does not wait for a delayed answer', async () => {
    const clock = new FakeClock();
    const { emu, token } = await started({ clock });
    emu.addFault({ target: 'trigger', delayMs: 60_000 });
    const pending = triggerRequest(emu, token);
    pending.catch(() => undefined);
    await vi.waitFor(() => expect(emu.stats().triggerRequests).toBe(1));
    await emu.stop();
    await expect(pending).rejects.toThrow(TypeError);
    expect(clock.pending()).toBe(0);
  });
});

describe('fault management', () => {
  it('POST /__emulator/faults answers 400 naming each wrong field, and queues nothing', async () => {
    const { emu, token } = await started();
    const cases: [unknown, string][] = [
      [{ target: 'triggers' }, 'target:'],
      [{ target: 'trigger', times: 0 }, 'times:'],
      [{ target: 'trigger', status: 99 }, 'status:'],
      [{ target: 'trigger', delayMs: -1 }, 'delayMs:'],
      [{ target: 'trigger', drop: 'yes' }, 'drop:'],
      [{ target: 'trigger', retryAfter: 'soon' }, 'retryAfter:'],
      [{ target: 'trigger', delay: 100 }, '"delay"'],
      [[], 'expected object'],
    ];
    for (const [fault, named] of cases) {
      const res = await addFault(emu, fault);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toContain(named);
    }
    const notJson = await fetch(`${emu.url}/__emulator/faults`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    expect((await triggerRequest(emu, token)).status).toBe(200);
  });

  it('addFault() throws the same way', async () => {
    const { emu } = await started();
    expect(() => emu.addFault({ target: 'token', times: -3 })).toThrow(/times/);
  });

  it('GET lists pending faults; DELETE clears them all', async () => {
    const { emu, token } = await started();
    emu.addFault({ target: 'trigger', times: 3, status: 503 });
    emu.addFault({ target: 'token', status: 500 });
    await triggerRequest(emu, token);
    const pending = (await (await fetch(`${emu.url}/__emulator/faults`)).json()) as { target: string; remaining: number }[];
    expect(pending.map((p) => [p.target, p.remaining])).toEqual([
      ['token', 1],
      ['trigger', 2],
    ]);
    expect((await fetch(`${emu.url}/__emulator/faults`, { method: 'DELETE' })).status).toBe(204);
    expect((await triggerRequest(emu, token)).status).toBe(200);
    expect((await tokenRequest(emu)).status).toBe(200);
    emu.addFault({ target: 'trigger' });
    emu.clearFaults();
    expect((await triggerRequest(emu, token)).status).toBe(200);
  });
});
