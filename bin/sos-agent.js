#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// The checkout runs the TypeScript sources directly (Node 24 strips types); the packaged binary bundles them.
import { runCli } from '../src/cli/main.ts';

runCli();
