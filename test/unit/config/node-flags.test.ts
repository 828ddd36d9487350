// Every way the project starts `shadowplane` gives Node the same flags as the
// command's own `#!` line (README, "The xDS server"), and the benchmarks read them
// from there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);
const read = (file: string): string => readFileSync(new URL(file, root), 'utf8');

const shebang = read('src/cli/main.ts').split('\n', 1)[0]!;
const flags = /^#!\/usr\/bin\/env -S node (.+)$/.exec(shebang)?.[1] ?? '';

describe('the flags shadowplane runs with', () => {
  it('are given on the command’s #! line', () => {
    expect(flags).toMatch(/--max-semi-space-size=\d+/);
    expect(flags).toMatch(/--initial-old-space-size=\d+/);
  });

  it('are given by npm start, npm run serve and the Compose entry point', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain(`node ${flags} dist/cli/main.js`);
    expect(scripts.serve).toContain(`node ${flags} dist/cli/main.js serve`);
    expect(read('examples/compose/shadowplane.sh')).toContain(`exec node ${flags} dist/cli/main.js "$@"`);
  });
});
