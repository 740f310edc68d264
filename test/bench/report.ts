// Markdown tables, aligned so they read the same in a terminal and in docs/benchmarks.md.

export type Cell = string | number;

export function table(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => r.map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...text.map(line)].join('\n');
}

/** Fixed decimals, or '-' for NaN. */
export function num(v: number, decimals = 1): string {
  return Number.isFinite(v) ? v.toFixed(decimals) : '-';
}

export function ms(v: number, decimals = 2): string {
  return Number.isFinite(v) ? `${v.toFixed(decimals)} ms` : '-';
}

export function pct(v: number, decimals = 1): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(decimals)} %` : '-';
}

/** A section of the report: a title, prose, tables; printed as it is made, gathered for the docs. */
export class Report {
  readonly #parts: string[] = [];

  section(title: string): void {
    this.#emit(`## ${title}`);
  }

  text(paragraph: string): void {
    this.#emit(paragraph);
  }

  table(header: readonly string[], rows: readonly (readonly Cell[])[]): void {
    this.#emit(table(header, rows));
  }

  #emit(part: string): void {
    console.log(`\n${part}`);
    this.#parts.push(part);
  }

  markdown(): string {
    return `${this.#parts.join('\n\n')}\n`;
  }
}
