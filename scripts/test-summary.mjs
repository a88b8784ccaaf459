// Prints one closing line for every package's jest run, and the skipped tests with their
// reasons (a skipped test's name carries its reason). Exits 1 when anything failed.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dir = join(root, '.test-results');
let files = [];
try {
  files = readdirSync(dir).filter((f) => f.endsWith('.json'));
} catch {}
const total = { passed: 0, failed: 0, skipped: 0 };
for (const f of files) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  total.passed += r.passed;
  total.failed += r.failed;
  total.skipped += r.skipped;
  const names =
    r.skippedNames.length > 8
      ? [...r.skippedNames.slice(0, 8), `... and ${r.skippedNames.length - 8} more`]
      : r.skippedNames;
  for (const n of names) console.log(`skipped (${f.replace(/\.json$/, '')}): ${n}`);
}
console.log(`Tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed > 0 || files.length === 0 ? 1 : 0);
