import { Writable } from 'node:stream';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'part', 'v']);

/**
 * Human-readable log lines for a terminal: "09:41:07 WARN  outbox: alert queued alertId=…". pino writes
 * JSON into it; journald and files get the JSON itself. In-process on purpose: no worker transports.
 */
export class PrettyLogStream extends Writable {
  readonly #out: NodeJS.WritableStream;
  #partial = '';

  constructor(out: NodeJS.WritableStream) {
    super();
    this.#out = out;
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    const text = this.#partial + chunk.toString();
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) if (line) this.#out.write(`${formatLine(line)}\n`);
    done();
  }
}

export function formatLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 19) : '';
  const level = LEVELS[o.level as number] ?? String(o.level);
  const part = typeof o.part === 'string' ? `${o.part}: ` : '';
  const extra = Object.entries(o)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level} ${part}${String(o.msg ?? '')}${extra ? `  ${extra}` : ''}`;
}
