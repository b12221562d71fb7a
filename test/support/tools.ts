import { execFileSync } from 'node:child_process';

/**
 * Tests that need a Debian tool (gpsd, gpsfake, socat, mosquitto) call this at the top of their suite.
 * In CI a missing tool is a failure (.ci/run installs them); on a developer machine the suite is skipped
 * with one clear line.
 */
export function haveTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI) throw new Error(`${name} is not installed: .ci/run must install it (CI never skips)`);
    console.warn(`SKIP: ${name} is not installed; install it (see .ci/run) to run these tests`);
    return false;
  }
}
