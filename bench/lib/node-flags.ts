// The Node/V8 flags `shadowplane` runs with, read from its command's first line
// (src/cli/main.ts: `#!/usr/bin/env -S node <flags>`). Every process that runs the
// control plane in a benchmark gets them, so the figures are those of the product as
// it runs, not of Node's defaults.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './paths.js';

const SHEBANG = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+=\S+)*)$/;

export function serveNodeFlags(): string[] {
  const file = path.join(repoRoot, 'src', 'cli', 'main.ts');
  const first = readFileSync(file, 'utf8').split('\n', 1)[0]!;
  const match = SHEBANG.exec(first);
  if (!match) throw new Error(`${file}: the first line is not "#!/usr/bin/env -S node --flag=value…": ${first}`);
  return match[1]!.trim().split(' ').filter(Boolean);
}
