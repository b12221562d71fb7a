import { describe, expect, it } from 'vitest';
import { EV_KEY, EV_SYN, InputEventDecoder, KEY_SOS, SYN_DROPPED, SYN_REPORT, packInputEvent, recordSize, type InputEvent, type InputEventLayout } from '../../../src/button/input-event.ts';
import { KeyEdgeFilter } from '../../../src/button/evdev.ts';

const key = (timeMs: number, value: number, code = KEY_SOS): InputEvent => ({ timeMs, type: EV_KEY, code, value });
const syn = (timeMs: number, code = SYN_REPORT): InputEvent => ({ timeMs, type: EV_SYN, code, value: 0 });

/** A press and release as the gpio-keys driver reports them: each key record followed by a SYN_REPORT. */
const PRESS: InputEvent[] = [key(1_700_000_000_000, 1), syn(1_700_000_000_000), key(1_700_000_002_500.25, 0), syn(1_700_000_002_500.25)];

describe('struct input_event layouts', () => {
  it('auto follows the word size of the architecture Node runs as', () => {
    expect(recordSize('auto', 'x64')).toBe(24);
    expect(recordSize('auto', 'arm64')).toBe(24);
    expect(recordSize('auto', 'arm')).toBe(16);
    expect(recordSize('auto', 'ia32')).toBe(16);
    expect(recordSize('32', 'x64')).toBe(16);
    expect(recordSize('64', 'arm')).toBe(24);
  });

  for (const size of [24, 16] as InputEventLayout[]) {
    it(`decodes ${size}-byte records split at every possible byte boundary`, () => {
      const bytes = Buffer.concat(PRESS.map((e) => packInputEvent(e, size)));
      expect(bytes.length).toBe(PRESS.length * size);
      for (let cut = 1; cut < bytes.length; cut++) {
        const d = new InputEventDecoder(size);
        const got = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
        expect(got).toEqual(PRESS);
        expect(d.garbage).toBe(0);
      }
      // And one byte at a time.
      const d = new InputEventDecoder(size);
      const got = [...bytes].flatMap((b) => d.push(Buffer.from([b])));
      expect(got).toEqual(PRESS);
    });
  }

  it('counts and drops records no kernel would write, keeping the good ones around them', () => {
    const size = 24;
    const bad = [
      { timeMs: 1000, type: 0x40, code: 0, value: 0 }, // type above EV_MAX
      { timeMs: 1000, type: EV_KEY, code: KEY_SOS, value: 7 }, // key value not 0/1/2
      { timeMs: 1000, type: EV_SYN, code: 9, value: 0 }, // unknown SYN code
    ].map((e) => packInputEvent(e, size));
    const usecOutOfRange = packInputEvent(key(1000, 1), size);
    usecOutOfRange.writeBigInt64LE(2_000_000n, 8);
    const d = new InputEventDecoder(size);
    const got = d.push(Buffer.concat([packInputEvent(key(1000, 1), size), ...bad, usecOutOfRange, packInputEvent(key(2000, 0), size)]));
    expect(got).toEqual([key(1000, 1), key(2000, 0)]);
    expect(d.garbage).toBe(4);
  });

  it('records of the other layout come out as garbage, not as presses', () => {
    const d = new InputEventDecoder(16);
    const events = d.push(Buffer.concat(PRESS.map((e) => packInputEvent(e, 24))));
    expect(events.filter((e) => e.type === EV_KEY && e.code === KEY_SOS)).toEqual([]);
    expect(d.garbage).toBeGreaterThan(0);
  });
});

describe('KeyEdgeFilter', () => {
  it('value 1 = down, 0 = up, 2 = autorepeat ignored; other keys ignored', () => {
    const f = new KeyEdgeFilter();
    const edges = f.push([key(0, 1), syn(0), key(500, 2), key(500, 1, 30), key(520, 0, 30), key(1000, 0), syn(1000)], KEY_SOS, 5000);
    expect(edges.map((e) => e.kind)).toEqual(['down', 'up']);
  });

  it('spaces edges of one batch by their kernel timestamps, the newest at "now"', () => {
    const f = new KeyEdgeFilter();
    const edges = f.push([key(10_000, 1), syn(10_000), key(10_040, 0), syn(10_040)], KEY_SOS, 777);
    expect(edges).toEqual([
      { kind: 'down', at: 737 },
      { kind: 'up', at: 777 },
    ]);
  });

  it('never moves an edge back more than a second, nor before an edge already given out', () => {
    const f = new KeyEdgeFilter();
    expect(f.push([key(0, 1)], KEY_SOS, 100)).toEqual([{ kind: 'down', at: 100 }]);
    // A clock step of an hour between two records: the up is not an hour-long hold.
    expect(f.push([key(3_600_000, 0), syn(7_200_000)], KEY_SOS, 200)).toEqual([{ kind: 'up', at: 100 }]);
  });

  it('SYN_DROPPED releases a held key and ignores events up to the next SYN_REPORT', () => {
    const f = new KeyEdgeFilter();
    f.push([key(0, 1), syn(0)], KEY_SOS, 0);
    const edges = f.push([syn(10, SYN_DROPPED), key(20, 1), key(30, 0), syn(30), key(40, 1), syn(40)], KEY_SOS, 50);
    expect(edges.map((e) => e.kind)).toEqual(['up', 'down']);
  });

  it('repeated edges are dropped (an up after a synthetic up is not a second release)', () => {
    const f = new KeyEdgeFilter();
    f.push([key(0, 1)], KEY_SOS, 0);
    expect(f.release(10)).toEqual({ kind: 'up', at: 10 });
    expect(f.release(20)).toBeNull();
    expect(f.push([key(30, 0)], KEY_SOS, 30)).toEqual([]);
  });
});
