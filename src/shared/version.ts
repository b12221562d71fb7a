// Kept in step with package.json by test/unit/shared/version.test.ts (the bundle cannot read package.json).
export const VERSION = '0.1.0';
