import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Emulator } from '../../src/emulator/server.ts';
import { REPO_ROOT } from '../support/fixtures.ts';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, startEmulator } from '../support/emulator.ts';
import { haveTool } from '../support/tools.ts';

const run = promisify(execFile);

/** The seed's "Sample Code Snippet", verbatim (seed/emergency-workflow-api.txt): no URLs, and no `&` in the form. */
const SEED_SNIPPET = `access_token=$(curl --request POST \\
            --header 'content-type: application/x-www-form-urlencoded' \\
            --data 'client_id=<KEY>client_secret=<SECRET>grant_type=client_credentials' | jq '.access_token' | tr -d '"')

curl --request POST \\
            --header "authorization: Bearer $access_token" \\
            --header 'content-type: application/json' \\
            --data '{"callflow":"company_dataconnect_v1","variables":{"caller_info":{"full_name":"Joe User","phone_number":"6615555555"},"location":{"latitude":"39.285270","longitude":"-76.61247","uncertainty":"7"},"vehicle_info":{"make":"Ford","model":"Fiesta","color":"Red","license_plate":"ABC","license_plate_state":"MN"}}}'`;

const SEED_FILE = resolve(REPO_ROOT, '../shared/seed/emergency-workflow-api.txt');

/** The snippet with the credentials and the two URLs filled in; `separators` adds the `&` the seed's form lacks. */
function seedScript(url: string, separators: boolean): string {
  const form = separators
    ? `client_id=${TEST_CLIENT_ID}&client_secret=${TEST_CLIENT_SECRET}&grant_type=client_credentials`
    : `client_id=${TEST_CLIENT_ID}client_secret=${TEST_CLIENT_SECRET}grant_type=client_credentials`;
  return `${SEED_SNIPPET.replace('client_id=<KEY>client_secret=<SECRET>grant_type=client_credentials', form).replace(
    "grant_type=client_credentials' |",
    `grant_type=client_credentials' '${url}/oauth/token' |`,
  )} '${url}/v1/rem/trigger'`;
}

function seedVariables(): unknown {
  const data = /--data '(\{.*\})'/.exec(SEED_SNIPPET);
  return (JSON.parse(data![1]!) as { variables: unknown }).variables;
}

const tools = haveTool('curl') && haveTool('jq') && haveTool('tr');

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.stop();
  emu = undefined;
});

describe('the seed check', () => {
  it('the snippet here is the seed\'s own, word for word', () => {
    if (!existsSync(SEED_FILE)) {
      console.warn(`SKIP: ${SEED_FILE} not found; the snippet cannot be compared with the seed`);
      return;
    }
    const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
    expect(squash(readFileSync(SEED_FILE, 'utf8'))).toContain(squash(SEED_SNIPPET));
  });

  it.skipIf(!tools)("runs the seed's two curl commands (URLs filled in, & added) and the emulator accepts the seed's exact variables", async () => {
    emu = await startEmulator();
    const { stdout } = await run('sh', ['-c', seedScript(emu.url, true)], { timeout: 20_000 });
    const answer = JSON.parse(stdout) as { code: number; id: string; message: string };
    expect(answer).toEqual({ code: 0, id: expect.any(String), message: expect.any(String) });
    expect(emu.triggers()).toEqual([{ id: answer.id, callflow: 'company_dataconnect_v1', variables: seedVariables(), receivedAt: expect.any(String) }]);
    expect(emu.stats()).toEqual({ tokenRequests: 1, triggerRequests: 1, accepted: 1 });
  });

  it.skipIf(!tools)('without the & separators (the seed as printed) the token is refused and nothing is triggered', async () => {
    emu = await startEmulator();
    const { stdout } = await run('sh', ['-c', seedScript(emu.url, false)], { timeout: 20_000 });
    expect(JSON.parse(stdout)).toMatchObject({ fault: { faultstring: 'Invalid access token' } });
    expect(emu.triggers()).toEqual([]);
  });
});
