import { describe, expect, it } from 'vitest';
import { finished, spawnCli } from '../support/spawn-cli.ts';

/** `npm start` is the newcomer's first contact: it must work with no setup, on both paths. */
describe('sos-agent demo (npm start)', () => {
  for (const path of ['relay', 'direct'] as const) {
    it(`${path} path: a scripted hold becomes one trigger with the seed shape, then exits 0`, async () => {
      const r = await finished(spawnCli(['demo', '--auto', ...(path === 'direct' ? ['--direct'] : [])]));
      expect(r.stderr).not.toMatch(/ExperimentalWarning|ERROR|FATAL/);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(path === 'relay' ? 'route: relay over MQTT' : 'route: direct');
      expect(r.stdout.match(/emulator received trigger/g)).toHaveLength(1);
      expect(r.stdout).toMatch(/"caller_info": \{\s+"full_name": "Joe User",\s+"phone_number": "6615555555"/);
      expect(r.stdout).toMatch(/alert \S+ delivered: the API's id is \S+/);
      expect(r.stderr).toContain('ALERT RECEIVED');
    });
  }
});
