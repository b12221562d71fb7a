import { describe, expect, it } from 'vitest';
import {
  alertSubscription,
  alertTopic,
  decodeAlert,
  decodeStatus,
  encode,
  MAX_PAYLOAD_BYTES,
  parseTopic,
  presenceTopic,
  statusTopic,
  toAlertMessage,
} from '../../../src/relay/wire.ts';
import { sampleAlert } from './sample-alert.ts';

describe('topics', () => {
  it('builds and parses the three topics of a device', () => {
    expect(alertTopic('truck-042')).toBe('sos/v1/truck-042/alert');
    expect(statusTopic('truck-042')).toBe('sos/v1/truck-042/status');
    expect(presenceTopic('truck-042')).toBe('sos/v1/truck-042/presence');
    expect(parseTopic('sos/v1/truck-042/alert')).toEqual({ deviceId: 'truck-042', kind: 'alert' });
    expect(parseTopic('sos/v1/truck-042/presence')).toEqual({ deviceId: 'truck-042', kind: 'presence' });
  });

  it('refuses topics that are not ours or carry wildcards or another version', () => {
    for (const t of ['sos/v2/a/alert', 'sos/v1/+/alert', 'sos/v1/a/b/alert', 'sos/v1//alert', 'sos/v1/a/other', 'x/sos/v1/a/alert']) {
      expect(parseTopic(t), t).toBeNull();
    }
  });

  it('uses a shared subscription only when a group is configured', () => {
    expect(alertSubscription('bridges')).toBe('$share/bridges/sos/v1/+/alert');
    expect(alertSubscription(null)).toBe('sos/v1/+/alert');
  });
});

describe('alert payload', () => {
  it('round-trips an alert snapshot unchanged', () => {
    const alert = sampleAlert();
    const decoded = decodeAlert(encode(toAlertMessage(alert)));
    expect(decoded).toEqual({ ok: true, value: toAlertMessage(alert) });
  });

  it('names every wrong field of an invalid alert and still reads its alertId, so the device can be told', () => {
    const alert = sampleAlert();
    const bad = { ...toAlertMessage(alert), location: { ...alert.location, latitude: 123 }, initiation: { ...alert.initiation, gesture: 'timer' } };
    const decoded = decodeAlert(Buffer.from(JSON.stringify(bad)));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.reason).toBe('invalid_payload');
    expect(decoded.alertId).toBe(alert.alertId);
    expect(decoded.detail).toMatch(/location\.latitude/);
    expect(decoded.detail).toMatch(/initiation\.gesture/);
  });

  it('refuses an alert that is not started by a human gesture or whose test flag disagrees', () => {
    const alert = toAlertMessage(sampleAlert());
    expect(decodeAlert(encode({ ...alert, test: true })).ok).toBe(false);
    const noInitiation = { ...alert } as Record<string, unknown>;
    delete noInitiation.initiation;
    expect(decodeAlert(Buffer.from(JSON.stringify(noInitiation))).ok).toBe(false);
  });

  it('drops garbage without throwing', () => {
    for (const raw of ['', 'null', '[]', '{"alertId":', '\u0000\u0001', '"text"']) {
      const decoded = decodeAlert(Buffer.from(raw));
      expect(decoded.ok, raw).toBe(false);
    }
  });

  it('refuses an oversized payload before parsing it, naming the alert when it leads with its id', () => {
    const alert = sampleAlert();
    const big = { ...toAlertMessage(alert), caller: { full_name: 'x'.repeat(MAX_PAYLOAD_BYTES), phone_number: '6615555555' } };
    const decoded = decodeAlert(Buffer.from(JSON.stringify(big)));
    expect(decoded).toMatchObject({ ok: false, reason: 'too_large', alertId: alert.alertId });
  });

  it('normalizes the phone number the way the config does', () => {
    const alert = toAlertMessage(sampleAlert());
    const decoded = decodeAlert(encode({ ...alert, caller: { full_name: 'Joe', phone_number: '+1 (661) 555-5555' } }));
    expect(decoded.ok && decoded.value.caller?.phone_number).toBe('6615555555');
  });
});

describe('status payload', () => {
  it('accepts the four states and refuses an unknown one', () => {
    const alertId = sampleAlert().alertId;
    for (const state of ['accepted', 'triggered', 'rejected', 'failed'] as const) {
      expect(decodeStatus(encode({ alertId, state, at: 1 })).ok).toBe(true);
    }
    expect(decodeStatus(Buffer.from(JSON.stringify({ alertId, state: 'done', at: 1 }))).ok).toBe(false);
  });
});
