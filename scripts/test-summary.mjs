// Prints the plain closing line "N passed, N failed" from vitest's JSON report, so CI can read it.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) throw new Error('usage: test-summary.mjs <vitest.json>');
const report = JSON.parse(readFileSync(file, 'utf8'));
const skipped = report.numPendingTests + report.numTodoTests;
console.log(
  `Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`,
);
if (report.numTotalTests === 0 || report.numFailedTests > 0 || !report.success) process.exit(1);
