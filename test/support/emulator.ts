import { Emulator, type EmulatorOptions } from '../../src/emulator/server.ts';
import { silentLogger } from '../../src/shared/logger.ts';

export const TEST_CLIENT_ID = 'test-client';
export const TEST_CLIENT_SECRET = 'test-secret';

/** A started emulator on a free loopback port; the caller stops it (usually in afterEach/afterAll). */
export async function startEmulator(opts: Partial<EmulatorOptions> = {}): Promise<Emulator> {
  const emulator = new Emulator({
    clientId: TEST_CLIENT_ID,
    clientSecret: TEST_CLIENT_SECRET,
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    ...opts,
  });
  await emulator.start();
  return emulator;
}
