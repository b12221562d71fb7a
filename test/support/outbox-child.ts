// A device process for the crash test: the SQLite outbox with a DirectRoute to the emulator, fed alerts on
// stdin (one JSON AlertSnapshot a line). Prints "ready" once started, "queued <alertId>" once an alert is
// committed (the moment the person would be told), "delivered <alertId> <apiId>". The test SIGKILLs it.
// Run with node_modules/.bin/node: test/support/outbox-child.ts --api URL --db FILE
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parseSnapshot } from '../../src/outbox/record.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { directOutbox } from './outbox-direct.ts';

const { values } = parseArgs({ options: { api: { type: 'string' }, db: { type: 'string' }, 'response-timeout-ms': { type: 'string' } } });
if (!values.api || !values.db) {
  process.stderr.write('usage: outbox-child.ts --api URL --db FILE\n');
  process.exit(2);
}

// Logs go to stderr (synchronously), so the last lines before a kill survive for a failing test to show.
const logger = createLogger({ level: 'info', destination: 2, name: 'outbox-child' });
const direct = directOutbox({
  apiUrl: values.api,
  dbPath: values.db,
  logger,
  connectTimeoutMs: 500,
  responseTimeoutMs: Number(values['response-timeout-ms'] ?? 500),
  outbox: { baseBackoffMs: 50, maxBackoffMs: 500, pollIntervalMs: 500 },
});
const say = (line: string): void => void process.stdout.write(`${line}\n`);
direct.outbox.onChange((e) => {
  if (e.state === 'delivered') say(`delivered ${e.alertId} ${e.apiId ?? ''}`);
});

let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
  void direct.stop().then(() => process.exit(0));
});

await direct.start();
say('ready');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (stopping || line.trim() === '') return;
  const alert = parseSnapshot(line);
  void direct.outbox.enqueue(alert).then(({ durable }) => say(`queued ${alert.alertId} ${durable ? 'durable' : 'memory'}`));
});
