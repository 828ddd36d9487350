// `node dist/bench/bench/profile-summary.js FILE.cpuprofile…`: the summary that
// `npm run bench -- --profile` prints, for any V8 CPU profile (e.g. from node --cpu-prof).
import { summarizeProfileFile } from './lib/profile.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node dist/bench/bench/profile-summary.js FILE.cpuprofile…');
  process.exit(2);
}
for (const file of files) console.log(`${file}\n${summarizeProfileFile(file)}\n`);
