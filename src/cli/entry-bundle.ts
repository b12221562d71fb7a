// Entry of the bundle that scripts/package.ts builds into the single executable (and dist/sos-agent.cjs):
// the same CLI as bin/sos-agent.js, without its shebang, which a CommonJS wrapper would not parse.
import { runCli } from './main.ts';

runCli();
