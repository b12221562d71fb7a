import type { TokenHealth } from '../api/token-cache.ts';
import { createButtonSource } from '../button/create.ts';
import type { TerminalInput } from '../button/terminal.ts';
import type { ButtonSource } from '../button/types.ts';
import type { AgentConfig } from '../config/agent-schema.ts';
import { createFeedback } from '../feedback/create.ts';
import type { AgentState, Feedback } from '../feedback/types.ts';
import { createGpsSource } from '../gps/create.ts';
import { FixTracker } from '../gps/fix-tracker.ts';
import type { GpsSource, LocationSnapshot } from '../gps/types.ts';
import { completeAlert, createAlert, type AlertContext } from '../incident/alert.ts';
import type { AlertDraft, AlertSnapshot } from '../incident/types.ts';
import { Outbox, type OutboxEvent } from '../outbox/outbox.ts';
import { SqliteOutboxStore } from '../outbox/sqlite-store.ts';
import type { OutboxStore } from '../outbox/store.ts';
import type { Initiation } from '../press/initiation.ts';
import { PressPolicy, type PressEffect } from '../press/press-policy.ts';
import type { HealthSummary } from '../relay/wire.ts';
import { systemClock, type Clock, type TimerHandle } from '../shared/clock.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { VERSION } from '../shared/version.ts';
import { brokerCheck, buttonCheck, fixCheck, outboxCheck, tokenCheck } from './health-checks.ts';
import { buildWays, type Ways } from './routes.ts';
import { Supervisor, type HealthCheck, type HealthState } from './supervisor.ts';

export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  clock?: Clock;
  /** Where the terminal feedback and the terminal button's hints go (stderr by default). */
  terminal?: NodeJS.WritableStream;
  stdin?: TerminalInput;
  /** Replaces the configured button source (the demo's scripted presses, tests). Still a ButtonSource. */
  button?: ButtonSource;
  /** Replaces the configured store (tests). */
  store?: OutboxStore;
  env?: NodeJS.ProcessEnv;
}

/** The incident the person started; later gestures are recorded against it (invariant 3). */
interface Incident {
  alertId: string;
  test: boolean;
  repeats: Initiation[];
  /** Carried over from before a restart (from the outbox), not made by this process's press policy. */
  restored: boolean;
}

/** A confirmed press in its cancel window: committed to the outbox as held, so a crash now does not lose it. */
interface PendingPress {
  initiation: Initiation;
  /** Null when no alert is made for it (a press during an incident restored after a restart is a repeat). */
  draft: AlertDraft | null;
  /** Resolves true once the draft is held in the outbox; false when it could not be. */
  committed: Promise<boolean>;
}

/** How long "cancelled" and "failed" stay shown before the idle pattern returns. */
const SHOW_RESULT_MS = 5000;
const SHOW_FAILED_MS = 60_000;
/** How long stop() lets sends already at the API be answered (systemd's TimeoutStopSec is 20 s). */
const STOP_GRACE_MS = 8000;
/** How long start() waits for the broker before the first health verdict. */
const LINK_GRACE_MS = 2000;
/** How often the supervisor polls every check; parts' own events show at once. */
const SUPERVISE_EVERY_MS = 10_000;

/**
 * The device agent: the one place that builds every part and knows their start/stop order.
 *
 *   button ─► press policy ─► incident (location snapshot) ─► outbox (fsync) ─► route (direct | relay)
 *   GPS ─► fix tracker ──────────┘                                  └─► feedback shows every state
 *
 * Start order: feedback, outbox, ways to the API, GPS, press policy, button — so the button is live only once
 * a confirmed press can be committed. Stop runs in reverse, and a pending press is dispatched, not dropped.
 *
 * A confirmed press is committed before anything is shown (invariant 2): held in the outbox while its cancel
 * window runs (and while there is no location yet), released to the queue when it may go, cancelled (kept,
 * never sent) when the person presses again within the window. Held alerts from before a restart are sent:
 * at once when their window was open (the person had not cancelled when the power went), with the first fix
 * when they were waiting for a location.
 */
export class Agent {
  readonly config: AgentConfig;
  readonly clock: Clock;
  readonly feedback: Feedback;
  readonly gps: GpsSource;
  readonly tracker: FixTracker;
  readonly button: ButtonSource;
  readonly policy: PressPolicy;
  readonly #store: OutboxStore;
  #outbox: Outbox | null = null;
  #ways: Ways | null = null;
  readonly #log: Logger;
  readonly #offs: (() => void)[] = [];
  readonly #dispatching = new Set<Promise<void>>();
  readonly #stopAbort = new AbortController();
  readonly #alertListeners = new Set<(e: OutboxEvent, alert: AlertSnapshot | undefined) => void>();
  readonly #alerts = new Map<string, AlertSnapshot>();
  #incident: Incident | null = null;
  #pending: PendingPress | null = null;
  #incidentTimer: TimerHandle | undefined;
  #resultTimer: TimerHandle | undefined;
  #shown: AgentState = 'armed';
  #supervisor: Supervisor | null = null;
  #running = false;

  constructor(options: AgentOptions) {
    const { config } = options;
    this.config = config;
    this.clock = options.clock ?? systemClock;
    this.#log = options.logger;
    const deps = { clock: this.clock, logger: this.#log };
    const testAlerts = config.callflow.test_name !== null;
    this.feedback = createFeedback(config.feedback, { logger: this.#log, ...(options.terminal ? { stream: options.terminal } : {}) });
    this.gps = createGpsSource(config.gps, { clock: this.clock, logger: this.#log.child({ part: 'gps' }) });
    this.tracker = new FixTracker({ maxAgeMs: config.gps.max_age_s * 1000, fallback: config.gps.fallback, clock: this.clock });
    this.button =
      options.button ??
      createButtonSource(config.button, {
        ...deps,
        press: config.press,
        testAlerts,
        ...(options.stdin ? { stdin: options.stdin } : {}),
        ...(options.terminal ? { stderr: options.terminal } : {}),
        ...(options.env ? { env: options.env } : {}),
      });
    this.policy = new PressPolicy({ config: config.press, clock: this.clock, testAlerts, logger: this.#log.child({ part: 'press' }) });
    this.#store = options.store ?? new SqliteOutboxStore({ path: config.outbox.path, logger: this.#log.child({ part: 'outbox' }) });
  }

  /** The outbox, once started. */
  get outbox(): Outbox {
    if (!this.#outbox) throw new Error('agent not started');
    return this.#outbox;
  }

  /** The ways to the API, once started. */
  get ways(): Ways {
    if (!this.#ways) throw new Error('agent not started');
    return this.#ways;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.feedback.start();
    this.#ways = await buildWays(this.config, { clock: this.clock, logger: this.#log, health: () => this.healthSummary() });
    this.#outbox = new Outbox({
      store: this.#store,
      route: this.#ways.route,
      clock: this.clock,
      logger: this.#log.child({ part: 'outbox' }),
      maxBackoffMs: this.config.outbox.max_backoff_s * 1000,
      alertMaxAgeMs: this.config.outbox.alert_max_age_s * 1000,
    });
    this.#offs.push(this.outbox.onChange((e) => this.#onOutbox(e)));
    await this.outbox.start();
    this.#restoreIncident();
    this.#resumeHeld();
    this.#watchWays();
    await this.ways.start();
    const link = this.ways.link;
    if (link && !link.connected) {
      // Give the broker a moment before the first health verdict, so a normal start does not flash "degraded".
      const grace = new Promise<void>((resolve) => this.clock.setTimeout(resolve, LINK_GRACE_MS));
      await Promise.race([link.whenUp(), grace]);
    }
    this.#offs.push(this.gps.onFix((fix) => this.tracker.update(fix)));
    await this.gps.start();
    this.#offs.push(this.policy.onEffect((effect) => this.#onPress(effect)));
    await this.policy.start();
    this.#offs.push(this.button.onEvent((event) => this.policy.button(event)));
    await this.button.start();
    this.#supervisor = new Supervisor({ clock: this.clock, logger: this.#log.child({ part: 'health' }), intervalMs: SUPERVISE_EVERY_MS, checks: this.#checks() });
    this.#offs.push(this.#supervisor.onChange((h) => this.#onHealth(h)));
    await this.#supervisor.start();
    this.#showIdle();
    this.#log.info(
      { version: VERSION, device: this.config.device.id, route: this.ways.route.name, gps: this.gps.kind, button: this.button.kind, feedback: this.feedback.kind },
      'armed: a press will be sent',
    );
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#supervisor?.stop();
    await this.button.stop();
    // Dispatches a press still in its cancel window: a shutdown must not lose a confirmed press.
    await this.policy.stop();
    // A dispatch still waiting for a first fix cannot finish now (it stays held in the outbox for the next
    // start); everything else reaches the outbox first.
    this.#stopAbort.abort(new Error('agent stopping'));
    await Promise.allSettled([...this.#dispatching]);
    await this.gps.stop();
    await this.outbox.stop(STOP_GRACE_MS);
    await this.ways.stop();
    this.clock.clearTimeout(this.#incidentTimer);
    this.clock.clearTimeout(this.#resultTimer);
    for (const off of this.#offs.splice(0)) off();
    await this.feedback.stop();
    this.#log.info('stopped');
  }

  /** Every outbox event of an alert, with its snapshot when this process made it. */
  onAlert(listener: (e: OutboxEvent, alert: AlertSnapshot | undefined) => void): () => void {
    this.#alertListeners.add(listener);
    return () => this.#alertListeners.delete(listener);
  }

  /** What the person is being shown now. */
  shown(): AgentState {
    return this.#shown;
  }

  /** Whether a press would get through right now, and if not, why. */
  health(): HealthState {
    return this.#supervisor?.snapshot() ?? { state: 'healthy', failing: [], warnings: [] };
  }

  healthSummary(): HealthSummary {
    const h = this.tracker.health();
    return {
      fixAgeS: h.lastFixAgeMs === null ? null : Math.round(h.lastFixAgeMs / 1000),
      outboxDepth: this.#outbox?.stats().depth ?? null,
      lastContactAt: this.#ways?.link?.lastContactAt ?? null,
      version: VERSION,
      status: this.#supervisor?.state() ?? 'healthy',
      failing: (this.#supervisor?.failing() ?? []).map((f) => f.name),
    };
  }

  /** The checks that tell whether a press would get through; the supervisor polls them and hears their events. */
  #checks(): HealthCheck[] {
    const checks: HealthCheck[] = [
      outboxCheck(this.outbox, { path: this.config.outbox.path }),
      fixCheck(this.tracker, {
        maxAgeMs: this.config.gps.max_age_s * 1000,
        hasFallback: this.config.gps.fallback !== null || this.config.gps.source === 'static',
        onFix: (listener) => this.gps.onFix(() => listener()),
      }),
      buttonCheck(this.button),
    ];
    if (this.ways.client) checks.push(tokenCheck(this.ways.client.tokens));
    if (this.ways.link) checks.push(brokerCheck(this.ways.link));
    return checks;
  }

  /** The way to the API is open again (a token came through, the broker link is up): retry what waits now. */
  #watchWays(): void {
    const client = this.ways.client;
    if (client) {
      const onHealth = (h: TokenHealth): void => {
        if (h.state === 'ok') this.outbox.wayIsBack();
      };
      client.tokens.on('health', onHealth);
      this.#offs.push(() => client.tokens.off('health', onHealth));
    }
    const link = this.ways.link;
    if (link) this.#offs.push(link.onUp(() => this.outbox.wayIsBack()));
  }

  #onHealth(h: HealthState): void {
    if (h.state === 'degraded') this.#log.warn({ failing: h.failing }, 'degraded: a press might not get through');
    else this.#log.info('healthy: a press will get through');
    this.#showIdle();
    this.#ways?.link?.refreshPresence();
  }

  #onPress(effect: PressEffect): void {
    switch (effect.type) {
      case 'holding':
        if (!effect.during_incident) this.#show('holding');
        return;
      case 'counting':
        if (!effect.during_incident) this.#show('holding', `${effect.presses}/${effect.needed} presses`);
        return;
      case 'idle':
        this.#showIdle();
        return;
      case 'pending':
        this.#holdPending(effect.initiation, effect.window_ms);
        return;
      case 'cancelled': {
        this.#log.info({ gesture: effect.initiation.gesture }, 'alert cancelled by the person within the cancel window');
        const pending = this.#takePending(effect.initiation);
        this.#track(
          (async () => {
            if (pending?.draft && (await pending.committed)) await this.outbox.cancel(pending.draft.alertId, 'person');
            this.#showResult('cancelled', undefined, SHOW_RESULT_MS);
          })(),
          'could not record the cancel',
        );
        return;
      }
      case 'dispatch': {
        const pending = this.#takePending(effect.initiation);
        const restored = this.#incident;
        if (restored && !restored.test && !pending?.draft) {
          // Only an incident restored after a restart can be open here (a live one makes the policy say
          // `repeat`): the alert of before the restart is still on its way, so this press is not a second call.
          restored.repeats.push(effect.initiation);
          this.#log.warn(
            { alertId: restored.alertId, gesture: effect.initiation.gesture, repeats: restored.repeats.length },
            'press during an active incident (from before a restart): recorded against it, no second call started',
          );
          return;
        }
        this.#track(this.#dispatch(effect.initiation, pending), 'could not create the alert', true);
        return;
      }
      case 'repeat': {
        const incident = this.#incident;
        incident?.repeats.push(effect.initiation);
        this.#log.warn(
          { alertId: incident?.alertId, gesture: effect.initiation.gesture, repeats: incident?.repeats.length },
          'press during an active incident: recorded against it, no second call started',
        );
        return;
      }
    }
  }

  #alertContext(): AlertContext {
    return { deviceId: this.config.device.id, caller: this.config.caller, vehicle: this.config.vehicle, callflow: this.config.callflow };
  }

  /** Keeps a piece of press handling for stop() to wait for; a failure is logged (and shown when `show`). */
  #track(work: Promise<unknown>, what: string, show = false): void {
    const p = work.then(
      () => undefined,
      (e: unknown) => {
        this.#log.error({ err: errorMessage(e) }, what);
        if (show) this.#show('failed', errorMessage(e));
      },
    );
    this.#dispatching.add(p);
    void p.finally(() => this.#dispatching.delete(p));
  }

  /** The pending press this effect is about, no longer pending. */
  #takePending(initiation: Initiation): PendingPress | null {
    const pending = this.#pending;
    if (pending?.initiation !== initiation) return null;
    this.#pending = null;
    return pending;
  }

  /**
   * The press is confirmed and its cancel window starts: commit it (held) before the person is told
   * "confirmed", so a crash in the window does not lose it. A hold that became a test alert replaces the
   * real one it held a moment ago, in the same commit.
   */
  #holdPending(initiation: Initiation, windowMs: number): void {
    const previous = this.#pending;
    const incident = this.#incident;
    let draft: AlertDraft | null = null;
    // During an incident restored after a restart this press is recorded against it (see 'dispatch'), not held.
    if (!incident || incident.test) {
      try {
        draft = createAlert(initiation, this.tracker.snapshot(), this.#alertContext());
      } catch (e) {
        this.#log.error({ err: errorMessage(e) }, 'could not create the alert');
      }
    }
    const pending: PendingPress = { initiation, draft, committed: Promise.resolve(false) };
    this.#pending = pending;
    const show = (): void => {
      if (this.#pending === pending && windowMs > 0) this.#show('cancel_window', `${initiation.test ? 'TEST alert' : 'alert'} in ${Math.round(windowMs / 1000)} s; press again to cancel`);
    };
    if (draft === null) {
      show();
      return;
    }
    const commit = (): void => {
      pending.committed = this.outbox.hold(draft, 'cancel_window', { replaces: previous?.draft?.alertId }).then(
        () => true,
        (e: unknown) => {
          this.#log.error({ err: errorMessage(e), alertId: draft.alertId }, 'could not commit the confirmed press: it is sent when its cancel window ends, a crash before then loses it');
          return false;
        },
      );
      this.#track(pending.committed.then(show), 'could not show the cancel window');
    };
    // No window: the dispatch normally follows in this same turn and commits the press once, as queued. Only
    // a hold that may yet become a test alert waits (for its release or test_hold_ms): that wait is held too,
    // and the test alert replacing it is committed in the same write that cancels it.
    if (windowMs > 0 || previous?.draft) commit();
    else queueMicrotask(() => {
      if (this.#pending === pending) commit();
    });
  }

  /**
   * The cancel window is over (or there was none): the alert goes now with the location as it stands, or, with
   * no location yet, stays committed (held) and goes with the first fix.
   */
  async #dispatch(initiation: Initiation, pending: PendingPress | null): Promise<void> {
    const held = pending !== null && (await pending.committed);
    const draft = pending?.draft ?? createAlert(initiation, null, this.#alertContext());
    const id = draft.alertId;
    this.#incident = { alertId: id, test: draft.test, repeats: [], restored: false };
    // A test flow never holds presses back: a real press right after a test must start a real call.
    if (draft.test) this.policy.incidentEnded();
    const location = this.tracker.snapshot();
    this.#log.info(
      { alertId: id, test: draft.test, gesture: initiation.gesture, uncertainty_m: location?.uncertainty_m, fixAgeMs: location?.age_ms, stale: location?.stale, hasLocation: location !== null },
      'alert confirmed by a press',
    );
    if (!held) {
      const alert = location === null ? null : completeAlert(draft, location);
      if (alert !== null) {
        // No window (or its hold failed) and a location: one commit, straight to the queue.
        this.#alerts.set(id, alert);
        const { durable } = await this.outbox.enqueue(alert);
        this.#showQueued(id, durable);
        return;
      }
      await this.outbox.hold(draft, 'location');
    }
    await this.#release(id, draft, location);
  }

  /**
   * A held alert goes out: with `location` (newer than the held one), else with the one it was held with, else
   * with the first fix. A stop while waiting leaves it held in the outbox, and the next start sends it.
   */
  async #release(id: string, draft: AlertDraft, location: LocationSnapshot | null): Promise<void> {
    let loc = location;
    for (;;) {
      const alert = completeAlert(draft, loc ?? undefined);
      if (alert !== null) this.#alerts.set(id, alert);
      const r = await this.outbox.release(id, loc ?? undefined);
      if (r.outcome === 'released') {
        this.#showQueued(id, r.durable);
        return;
      }
      if (r.outcome === 'not_held') return;
      if (this.#incident?.alertId === id) this.#show('waiting_location', 'no GPS fix yet; the alert goes out with the first fix');
      loc = await this.tracker.waitForLocation(this.#stopAbort.signal).catch(() => null);
      if (loc === null) {
        this.#log.error({ alertId: id }, 'stopped while waiting for a first fix: the alert stays committed in the outbox and goes out with the first fix after the next start');
        return;
      }
    }
  }

  #showQueued(id: string, durable: boolean): void {
    if (this.#incident?.alertId === id && this.#shown !== 'confirmed' && this.#shown !== 'failed') {
      this.#show('queued', durable ? 'committed; sending' : 'kept in memory only; sending');
    }
  }

  /**
   * Held alerts from before a restart. One held for its cancel window is sent now: the person had not cancelled
   * it when the agent stopped, and a press is never lost; their chance to cancel ended with the crash (the
   * alert record and its log say so). One held for a location goes with the first fix (or the fallback).
   */
  #resumeHeld(): void {
    for (const r of this.outbox.held()) {
      this.#log.warn(
        { alertId: r.alertId, heldFor: r.heldFor, test: r.alert.test, pressedAt: new Date(r.createdAt).toISOString() },
        r.heldFor === 'location' ? 'a press from before the restart waits for a location: it goes out with the first fix' : 'a press from before the restart was in its cancel window, not cancelled: sending it now',
      );
      const loc = r.alert.location === null ? this.tracker.snapshot() : null;
      this.#track(this.#release(r.alertId, r.alert, loc), 'could not release an alert held from before the restart');
    }
  }

  #onOutbox(e: OutboxEvent): void {
    const alert = this.#alerts.get(e.alertId);
    for (const l of this.#alertListeners) l(e, alert);
    if (e.state === 'delivered' || e.state === 'rejected') this.#alerts.delete(e.alertId);
    if (this.#incident?.alertId !== e.alertId) return;
    if (e.state === 'delivered') {
      this.#show('confirmed', `the API accepted it (id ${e.apiId ?? '?'})`);
      // The flow is running; presses for a while belong to it.
      this.clock.clearTimeout(this.#incidentTimer);
      this.#incidentTimer = this.clock.setTimeout(() => this.#endIncident(), this.config.press.incident_active_s * 1000);
    } else if (e.state === 'rejected') {
      this.#showResult('failed', `${e.error?.code ?? 'rejected'}: ${e.error?.message ?? ''}`, SHOW_FAILED_MS);
      // Nothing is running for this press: the next gesture must be able to start a new alert.
      this.#endIncident();
    } else if (e.state === 'retrying') {
      this.#show('queued', `attempt ${e.attempts ?? '?'} failed (${e.error?.code ?? 'error'}); retrying`);
    }
  }

  /**
   * After a restart, the newest real alert still being sent (however old), or delivered within the last
   * `incident_active_s`, is the active incident again: a press now is recorded against it, as it would have been
   * before the restart, instead of starting a second 9-1-1 flow.
   */
  #restoreIncident(): void {
    const windowMs = this.config.press.incident_active_s * 1000;
    const now = this.clock.now();
    let records: ReturnType<OutboxStore['list']>;
    try {
      records = this.#store.list({ states: ['held', 'queued', 'sending', 'delivered'] });
    } catch {
      return; // the outbox reports its own store failure
    }
    // As in a running agent: an alert not yet answered for keeps its incident open however old it is; a
    // delivered one for incident_active_s after delivery.
    const open = records.filter((r) => !r.alert.test && (r.state !== 'delivered' || (windowMs > 0 && (r.deliveredAt ?? 0) >= now - windowMs)));
    const newest = open[open.length - 1];
    if (!newest) return;
    this.#incident = { alertId: newest.alertId, test: false, repeats: [], restored: true };
    if (newest.state === 'delivered') {
      this.#incidentTimer = this.clock.setTimeout(() => this.#endIncident(), (newest.deliveredAt ?? now) + windowMs - now);
      this.#shown = 'confirmed';
    } else if (newest.state === 'held' && newest.heldFor === 'location') {
      this.#shown = 'waiting_location';
    } else {
      this.#shown = 'queued';
    }
    this.feedback.show(this.#shown, 'an alert from before the restart');
    this.#log.warn({ alertId: newest.alertId, state: newest.state }, 'an alert from before the restart is still the active incident: presses are recorded against it');
  }

  #endIncident(): void {
    this.clock.clearTimeout(this.#incidentTimer);
    this.#incidentTimer = undefined;
    if (this.#incident) this.#log.info({ alertId: this.#incident.alertId, repeats: this.#incident.repeats.length }, 'incident closed on the device');
    this.#incident = null;
    this.policy.incidentEnded();
  }

  #show(state: AgentState, detail?: string): void {
    this.clock.clearTimeout(this.#resultTimer);
    this.#resultTimer = undefined;
    this.#shown = state;
    this.feedback.show(state, detail);
  }

  /** A result stays visible for a while, then the idle pattern returns. */
  #showResult(state: AgentState, detail: string | undefined, ms: number): void {
    this.#show(state, detail);
    this.#resultTimer = this.clock.setTimeout(() => this.#showIdle(), ms);
  }

  /** Idle: armed or degraded; but an incident in progress keeps showing its own state. */
  #showIdle(): void {
    if (!this.#running) return;
    if (this.#incident !== null && (this.#shown === 'queued' || this.#shown === 'confirmed' || this.#shown === 'waiting_location')) return;
    const failing = this.#supervisor?.failing() ?? [];
    if (failing.length > 0) this.#show('degraded', failing.map((f) => `${f.name}: ${f.detail}`).join('; '));
    else this.#show('armed');
  }
}
