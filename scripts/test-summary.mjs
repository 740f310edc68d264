// Prints the plain closing line "N passed, N failed" from vitest's JSON report, so CI can read it,
// and names every failed test with the first lines of its failure: CI shows only the tail of a run,
// so test-all.sh prints this again as its last words.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const file = process.argv[2];
if (!file) throw new Error('usage: test-summary.mjs <vitest.json>');
const report = JSON.parse(readFileSync(file, 'utf8'));
const skipped = report.numPendingTests + report.numTodoTests;
for (const suite of report.testResults ?? []) {
  const where = relative(process.cwd(), suite.name);
  const failed = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
  // A file that failed outside any test (an import error, a hook) has no failed assertion.
  if (suite.status === 'failed' && failed.length === 0) {
    console.log(`FAIL ${where}\n  ${firstLines(suite.message)}`);
  }
  for (const t of failed) {
    console.log(`FAIL ${where} > ${t.fullName}\n  ${firstLines((t.failureMessages ?? []).join('\n'))}`);
  }
}
console.log(
  `Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`,
);
if (report.numTotalTests === 0 || report.numFailedTests > 0 || !report.success) process.exit(1);

function firstLines(text) {
  return String(text ?? '')
    .split('\n')
    .slice(0, 6)
    .join('\n  ');
}
