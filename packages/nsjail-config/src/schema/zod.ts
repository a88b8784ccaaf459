/**
 * The policy's zod schema, built from the descriptors on first call: strict objects (unknown
 * fields refused), every scalar in its protobuf range, enums by name, required fields required,
 * each field described (with its default) for the JSON Schema. Only what needs zod loads this
 * module (policySchema, policyJsonSchema); everything else works from the descriptors.
 */
import { z } from 'zod';
import {
  describeDefault,
  type FieldDescriptor,
  type MessageDescriptor,
  SCALAR_RANGES,
  type ScalarType,
} from './builders';
import { NsJailConfig, type NsJailConfig as Policy } from './nsjail';

function scalar(type: ScalarType): z.ZodType {
  switch (type) {
    case 'string':
      return z.string();
    case 'bytes':
      return z.instanceof(Uint8Array);
    case 'bool':
      return z.boolean();
    case 'int32':
    case 'uint32':
      return z.number().int().min(SCALAR_RANGES[type][0]).max(SCALAR_RANGES[type][1]);
    case 'int64':
    case 'uint64':
      return z.bigint().min(SCALAR_RANGES[type][0]).max(SCALAR_RANGES[type][1]);
  }
}

function fieldSchema(f: FieldDescriptor, messages: Map<MessageDescriptor, z.ZodType>): z.ZodType {
  const one =
    f.type === 'message'
      ? messageSchema(f.message!, messages)
      : f.type === 'enum'
        ? z
            .enum(f.enum!.values.map((v) => v.name) as [string, ...string[]])
            .describe(f.enum!.description)
        : scalar(f.type);
  if (f.label === 'required') return one.describe(`${f.description} Required.`);
  if (f.label === 'repeated') return z.array(one).describe(f.description).optional();
  return one.describe(describeDefault(f.description, f.default)).optional();
}

function messageSchema(d: MessageDescriptor, messages: Map<MessageDescriptor, z.ZodType>) {
  let s = messages.get(d);
  if (!s) {
    const shape: Record<string, z.ZodType> = {};
    for (const f of d.fields) shape[f.name] = fieldSchema(f, messages);
    s = z.strictObject(shape).describe(d.description);
    messages.set(d, s);
  }
  return s;
}

let built: z.ZodType<Policy> | undefined;

/** The policy schema (zod): `.parse()` checks a policy built in code as `assertPolicy` does. */
export function policySchema(): z.ZodType<Policy> {
  built ??= messageSchema(NsJailConfig.descriptor, new Map()) as z.ZodType<Policy>;
  return built;
}
