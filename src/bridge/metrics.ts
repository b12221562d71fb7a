/**
 * The bridge's Prometheus metrics, written by hand in the text exposition format (version 0.0.4): a few
 * counters, gauges and one histogram do not justify a dependency.
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels?: Labels, by = 1): void {
    // The unlabelled case is the hot one (every alert): no key to build.
    const key = labels ? labelText(labels) : '';
    const cur = this.#values.get(key);
    if (cur) cur.value += by;
    else this.#values.set(key, { labels: labels ?? {}, value: by });
  }
  get(labels?: Labels): number {
    return this.#values.get(labels ? labelText(labels) : '')?.value ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.#values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.#values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines;
  }
}

class Gauge {
  readonly name: string;
  readonly help: string;
  readonly #read: () => number;
  constructor(name: string, help: string, read: () => number) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.#read()}`];
  }
}

class Histogram {
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]!) {
        this.#counts[i]!++;
        break;
      }
    }
  }
  get count(): number {
    return this.#count;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      lines.push(`${this.name}_bucket{le="${this.#bounds[i]}"} ${cumulative}`);
    }
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`, `${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines;
  }
}

export interface MetricsSources {
  connectedDevices: () => number;
  inFlight: () => number;
  brokerConnected: () => boolean;
}

export class BridgeMetrics {
  readonly received = new Counter('sos_bridge_alerts_received_total', 'Alert messages received from devices, valid or not.');
  readonly triggered = new Counter('sos_bridge_alerts_triggered_total', 'Alerts the API accepted (each one started one callflow).');
  readonly rejected = new Counter('sos_bridge_alerts_rejected_total', 'Alerts refused for good, by reason (invalid payloads included).');
  readonly failed = new Counter('sos_bridge_alerts_failed_total', 'Alerts given up for now (the device retries), by reason.');
  readonly duplicates = new Counter('sos_bridge_alerts_duplicate_total', 'Repeats of an alertId already triggered, rejected or in flight: answered, never triggered again.');
  readonly takeovers = new Counter('sos_bridge_alerts_taken_over_total', 'In-flight alerts taken over from a bridge instance that stopped answering (re-triggered).');
  readonly apiAttempts = new Counter('sos_bridge_api_attempts_total', 'Trigger requests to the API, by outcome.');
  readonly apiLatency = new Histogram(
    'sos_bridge_api_latency_seconds',
    'Time of one trigger request to the API (token included when it had to be fetched).',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly #gauges: Gauge[];

  constructor(sources: MetricsSources) {
    this.#gauges = [
      new Gauge('sos_bridge_connected_devices', 'Devices whose retained presence says online.', sources.connectedDevices),
      new Gauge('sos_bridge_alerts_in_flight', 'Alerts this bridge is triggering right now.', sources.inFlight),
      new Gauge('sos_bridge_broker_connected', '1 when the bridge is connected to its broker.', () => (sources.brokerConnected() ? 1 : 0)),
    ];
  }

  render(): string {
    const all = [this.received, this.triggered, this.rejected, this.failed, this.duplicates, this.takeovers, this.apiAttempts];
    return `${[...all.flatMap((c) => c.render()), ...this.apiLatency.render(), ...this.#gauges.flatMap((g) => g.render())].join('\n')}\n`;
  }
}
