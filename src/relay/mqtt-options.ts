import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import { ConfigError } from '../shared/errors.ts';

/** How to reach and log in to a broker; shared by the device link, the bridge and the simulator. */
export interface BrokerEndpoint {
  url: string;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  /** PEM CA bundle for mqtts:// / wss:// (a private CA); the system store is used when null. */
  caFile?: string | null | undefined;
  /** PEM client certificate and key, for brokers that authenticate devices by certificate. */
  certFile?: string | null | undefined;
  keyFile?: string | null | undefined;
  keepaliveS: number;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError([{ path: what, message: `cannot read ${file} (${code})` }]);
  }
}

/**
 * mqtt.js options for a persistent QoS 1 session. Reads the PEM files, so it belongs in a `start()`.
 * TLS is always verified (rejectUnauthorized); a private CA goes in caFile, never a switch that turns checks off.
 */
export async function clientOptions(endpoint: BrokerEndpoint): Promise<IClientOptions> {
  const options: IClientOptions = {
    clientId: endpoint.clientId,
    protocolVersion: 4,
    clean: false,
    keepalive: endpoint.keepaliveS,
    // Reconnects are ours (jittered, see RelayLink); mqtt.js's fixed period would make a fleet retry in step.
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    // Nothing rides on QoS 0 here, and a queue of stale QoS 0 messages is worse than none.
    queueQoSZero: false,
    rejectUnauthorized: true,
  };
  if (endpoint.username !== undefined) options.username = endpoint.username;
  if (endpoint.password !== undefined) options.password = endpoint.password;
  if (endpoint.caFile) options.ca = await readPem(endpoint.caFile, 'ca_file');
  if (endpoint.certFile) options.cert = await readPem(endpoint.certFile, 'cert_file');
  if (endpoint.keyFile) options.key = await readPem(endpoint.keyFile, 'key_file');
  return options;
}

/** The URL without user info, safe for a log line. */
export function safeBrokerUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparseable broker URL)';
  }
}
