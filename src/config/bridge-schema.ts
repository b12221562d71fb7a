import { z } from 'zod';

// Placeholder until the bridge lands (issue 5); replaced by the bridge's real schema.
export const bridgeConfigSchema = z.strictObject({});
