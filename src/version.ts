import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// dist/version.js and src/version.ts both sit one level below package.json.
const pkg = require('../package.json') as { version: string };

export const VERSION: string = pkg.version;
