// Jest reporter: writes each package's totals to .test-results/<package>.json so that
// scripts/test-summary.mjs can print one closing line for the whole repo.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

export default class ResultsReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const dir = join(root, '.test-results');
    mkdirSync(dir, { recursive: true });
    const skippedNames = [];
    for (const file of results.testResults) {
      for (const t of file.testResults)
        if (t.status === 'pending' || t.status === 'skipped') skippedNames.push(t.fullName);
    }
    writeFileSync(
      join(dir, `${basename(this.rootDir)}.json`),
      JSON.stringify({
        passed: results.numPassedTests,
        failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
        skipped: results.numPendingTests + results.numTodoTests,
        skippedNames,
      }),
    );
  }
}
