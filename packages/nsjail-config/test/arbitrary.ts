/**
 * fast-check generators for policies, derived from the schema descriptors. Repeated fields
 * are absent or non-empty: an empty list and no list are the same policy, and the parser
 * represents both as absent.
 */
import fc from 'fast-check';
import type { FieldDescriptor, MessageDescriptor } from '../src/schema/builders';

function scalar(f: FieldDescriptor): fc.Arbitrary<unknown> {
  switch (f.type) {
    case 'string':
      return fc.oneof(
        fc.string({
          unit: fc.constantFrom(
            'a',
            'Z',
            ' ',
            '"',
            "'",
            '\\',
            '\n',
            '\t',
            '#',
            '{',
            '\u0000',
            '\u007f',
            'é',
            '😀',
          ),
          maxLength: 12,
        }),
        fc.string({ unit: 'binary', maxLength: 8 }),
      );
    case 'bytes':
      return fc.uint8Array({ maxLength: 12 });
    case 'bool':
      return fc.boolean();
    case 'int32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'uint32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'int64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'uint64':
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case 'enum':
      return fc.constantFrom(...f.enum!.values.map((v) => v.name));
    case 'message':
      return message(f.message!, 1);
  }
}

export function message(desc: MessageDescriptor, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  const required: string[] = [];
  for (const f of desc.fields) {
    const one =
      f.type === 'message'
        ? depth > 2
          ? fc.constant(undefined)
          : message(f.message!, depth + 1)
        : scalar(f);
    if (f.label === 'required') required.push(f.name);
    model[f.name] = f.label === 'repeated' ? fc.array(one, { minLength: 1, maxLength: 3 }) : one;
  }
  return fc.record(model, { requiredKeys: required }).map((r) => {
    // Drop sub-messages cut off by the depth limit (they would be undefined).
    for (const [k, v] of Object.entries(r))
      if (v === undefined || (Array.isArray(v) && v.includes(undefined))) delete r[k];
    return r;
  });
}
