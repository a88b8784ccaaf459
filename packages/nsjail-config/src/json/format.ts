/**
 * ProtoJSON re-indented the way `JSON.stringify(value, null, 2)` lays it out, with every
 * scalar written exactly as in the source. Going through JavaScript numbers would round the
 * 64-bit fields (rlimits, cgroup limits) above 2^53: `9007199254740993` would come back as
 * `…992`, a silent change of the policy. Strings keep their escapes as written, as the text
 * formatter keeps its literals.
 */
import type { JsonNode } from './parser';

const INDENT = '  ';

function print(node: JsonNode, depth: number, out: string[]): void {
  const inner = INDENT.repeat(depth + 1);
  switch (node.kind) {
    case 'object':
      if (node.entries.length === 0) {
        out.push('{}');
        return;
      }
      out.push('{\n');
      node.entries.forEach((e, i) => {
        out.push(`${inner}${e.keyRaw}: `);
        print(e.value, depth + 1, out);
        out.push(i < node.entries.length - 1 ? ',\n' : '\n');
      });
      out.push(`${INDENT.repeat(depth)}}`);
      return;
    case 'array':
      if (node.items.length === 0) {
        out.push('[]');
        return;
      }
      out.push('[\n');
      node.items.forEach((item, i) => {
        out.push(inner);
        print(item, depth + 1, out);
        out.push(i < node.items.length - 1 ? ',\n' : '\n');
      });
      out.push(`${INDENT.repeat(depth)}]`);
      return;
    case 'string':
      out.push(node.raw);
      return;
    case 'number':
      out.push(node.text);
      return;
    case 'literal':
      out.push(String(node.value));
      return;
  }
}

/** The document, two-space indented, one value a line, ending in a newline. */
export function formatJson(doc: JsonNode): string {
  const out: string[] = [];
  print(doc, 0, out);
  return `${out.join('')}\n`;
}
