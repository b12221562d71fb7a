import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { EV_KEY, EV_SYN, KEY_SOS, SYN_REPORT, packInputEvent } from '../../src/button/input-event.ts';
import type { AgentConfigInput } from '../../src/config/agent-schema.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from './emulator.ts';
import { REPO_ROOT } from './fixtures.ts';
import { COUNTABLE_TEMPLATES } from './outbox-direct.ts';
import { NODE, type CrashLife, type CrashSubject } from './outbox-crash.ts';

/** What became of the presses made on the agent's button, by what the agent logged about each. */
export interface AgentPressCounts {
  /** Presses attempted (one per alert the crash runner asked for). */
  presses: number;
  /** The life ended before the agent was armed and reading its button: nothing was pressed. */
  notArmed: number;
  /** Holds made on a live button. */
  holds: number;
  /** Holds that started a new alert ("alert confirmed by a press"), by alertId. */
  newAlerts: string[];
  /** Holds recorded against an alert still in progress ("press during an active incident"): no new alert. */
  repeats: number;
  /** Holds the kill cut before the agent answered them. */
  cut: number;
  /** Holds the agent, alive, said nothing about for maxHoldMs: a press the person would have to make again. */
  unanswered: number;
}

export interface AgentCrashSubject extends CrashSubject {
  counts(): AgentPressCounts;
}

export interface AgentCrashSubjectOptions {
  /** A private folder for the config and the button's FIFO. */
  dir: string;
  /** A hold lasts until the agent answers it, or this long (ms). */
  maxHoldMs?: number;
}

/** Hold time the config asks for: the schema's minimum. */
const HOLD_MS = 200;
const RECORD_BYTES = 24;

interface LogLine {
  msg?: unknown;
  alertId?: unknown;
}

function parse(line: string): LogLine {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as LogLine) : {};
  } catch {
    return {};
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `sos-agent run` (bin/sos-agent.js on the pinned Node) as the crash test's subject. Each alert is a human
 * gesture on the real evdev button source: `input_event` records written to a FIFO the agent reads as its
 * input device. Every hold is meant to be a new alert (cancel window 0, no debounce, incident over as soon
 * as the API accepts it), so the agent makes the alertId; the subject learns it from the JSON log, and a
 * press the agent never committed is never fed again (the person was never told it was sent).
 *
 * A hold lasts until the agent answers it (a new alert, or a repeat of the one in progress), as a person holds
 * until the light changes. Kills hit the whole process group: the agent and the `cat` reading its button, as
 * a power cut would.
 */
export function agentCrashSubject(options: AgentCrashSubjectOptions): AgentCrashSubject {
  const fifo = join(options.dir, 'button-event');
  const configFile = join(options.dir, 'agent.yaml');
  const maxHoldMs = options.maxHoldMs ?? 1500;
  execFileSync('mkfifo', [fifo]);
  const counts: AgentPressCounts = { presses: 0, notArmed: 0, holds: 0, newAlerts: [], repeats: 0, cut: 0, unanswered: 0 };
  const writers = new WeakMap<CrashLife, Promise<number | null>>();

  /** A writer on the FIFO once this life's `cat` has it open for reading; closed when the life ends. */
  const writerFor = (life: CrashLife): Promise<number | null> => {
    let writer = writers.get(life);
    if (writer) return writer;
    let over = false;
    void life.exited.then(() => (over = true));
    writer = (async () => {
      while (!over) {
        try {
          // Non-blocking: ENXIO until a reader has the FIFO open, so no open outlives the life it was for.
          return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
          await sleep(10);
        }
      }
      return null;
    })();
    // Closing the last writer once the reader is dead too throws away what it did not read: nothing from
    // this life reaches the next one, as with a real input device, whose events go only to readers open then.
    void Promise.all([writer, life.exited]).then(([fd]) => {
      if (fd !== null) closeSync(fd);
    });
    writers.set(life, writer);
    return writer;
  };

  const key = (fd: number, value: 0 | 1): boolean => {
    const t = Date.now();
    try {
      writeSync(
        fd,
        Buffer.concat([
          packInputEvent({ timeMs: t, type: EV_KEY, code: KEY_SOS, value }, RECORD_BYTES),
          packInputEvent({ timeMs: t, type: EV_SYN, code: SYN_REPORT, value: 0 }, RECORD_BYTES),
        ]),
      );
      return true;
    } catch {
      return false; // EPIPE: the reader was killed
    }
  };

  const hold = async (life: CrashLife): Promise<void> => {
    counts.presses++;
    let over = false;
    void life.exited.then(() => (over = true));
    await Promise.race([life.ready, life.exited]);
    const fd = over ? null : await writerFor(life);
    if (fd === null || over) {
      counts.notArmed++;
      return;
    }
    let answered!: () => void;
    const answer = new Promise<void>((r) => (answered = r));
    let outcome: 'alert' | 'repeat' | undefined;
    const off = life.onLine((line) => {
      if (outcome) return;
      const l = parse(line);
      if (l.msg === 'alert confirmed by a press' && typeof l.alertId === 'string') {
        outcome = 'alert';
        counts.newAlerts.push(l.alertId);
        answered();
      } else if (typeof l.msg === 'string' && l.msg.startsWith('press during an active incident')) {
        outcome = 'repeat';
        counts.repeats++;
        answered();
      }
    });
    if (!key(fd, 1)) {
      off();
      counts.notArmed++;
      return;
    }
    counts.holds++;
    await Promise.race([answer, life.exited, sleep(maxHoldMs)]);
    key(fd, 0);
    off();
    if (!outcome) {
      if (over) counts.cut++;
      else counts.unanswered++;
    }
  };

  return {
    command(apiUrl, dbPath) {
      const config: AgentConfigInput = {
        device: { id: 'crash-test' },
        caller: { full_name: 'Joe User', phone_number: '6615555555' },
        vehicle: { make: 'Ford', model: 'Fiesta', color: 'Red', license_plate: 'ABC', license_plate_state: 'MN' },
        // Short timeouts keep the test quick; the emulator's 1.2 s delay fault is past the response timeout,
        // so it makes ambiguous sends (sent, no answer) as a slow API would.
        api: { base_url: apiUrl, client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, connect_timeout_ms: 500, response_timeout_ms: 1000, token_margin_s: 0 },
        // No test callflow: a long hold must not wait to become a test alert; every hold is a real one at hold_ms.
        callflow: { name: 'company_dataconnect_v1', test_name: null },
        // The emulator's required variables plus the alertId, so duplicates can be counted per alert.
        callflows: { company_dataconnect_v1: COUNTABLE_TEMPLATES.company_dataconnect_v1 },
        gps: { source: 'static', latitude: 39.28527, longitude: -76.61247, uncertainty_m: 7 },
        button: { source: 'evdev', device: fifo, key_code: KEY_SOS, layout: '64' },
        press: { hold_ms: HOLD_MS, cancel_window_s: 0, debounce_ms: 0, incident_active_s: 0 },
        feedback: { terminal: false },
        outbox: { path: dbPath, max_backoff_s: 0.5 },
        log: { level: 'info' },
      };
      writeFileSync(configFile, stringify(config));
      return {
        file: NODE,
        args: ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, 'bin/sos-agent.js'), 'run', '--config', configFile],
        // `cat` (the evdev reader) and everything else the agent runs come from the pinned toolchain first.
        env: { PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}` },
      };
    },
    press: (_alert, life) => hold(life),
    confirmed(line) {
      const l = parse(line);
      return l.msg === 'alert queued' && typeof l.alertId === 'string' ? l.alertId : undefined;
    },
    ready: (line) => parse(line).msg === 'armed: a press will be sent',
    refeedUnconfirmed: false,
    killGroup: true,
    counts: () => ({ ...counts, newAlerts: [...counts.newAlerts] }),
  };
}
