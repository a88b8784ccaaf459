/** What a parsed policy remembers about where each value came from. */
import type { SourcePosition } from './errors';

export interface FieldSpan {
  /** Where the field name starts. */
  readonly name: SourcePosition;
  /** Where its value starts (`{` for messages). */
  readonly value: SourcePosition;
}

/**
 * Positions by field path: `hostname`, `mount[2]`, `mount[2].dst`, `envar[0]`. For strings,
 * `stringOffsets` maps each character of the decoded value to its source offset, so an error
 * inside a value (a kafel policy in `seccomp_string`) can point into the file.
 */
export interface PolicySource {
  readonly file: string | undefined;
  readonly text: string;
  readonly format: 'text' | 'json';
  readonly fields: ReadonlyMap<string, FieldSpan>;
  readonly stringOffsets: ReadonlyMap<string, readonly number[]>;
}

export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }

  position(offset: number): SourcePosition {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo]! + 1, offset };
  }
}

/** Turns a path's parts into the string form used as key: `mount[2].dst`. */
export function joinPath(prefix: string, name: string, index?: number): string {
  const base = prefix ? `${prefix}.${name}` : name;
  return index === undefined ? base : `${base}[${index}]`;
}
