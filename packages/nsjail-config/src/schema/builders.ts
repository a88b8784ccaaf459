/**
 * Builders that define the policy schema once: each call yields the protobuf facts of a field
 * (number, wire type, label, default, description) that the parser, emitter, validator, docs
 * and the zod schema (schema/zod.ts, built from these descriptors) need, and, as a type only,
 * the field's zod type, from which the policy's TypeScript types are inferred. Nothing else in
 * the package restates a field.
 *
 * No zod at run time here: loading zod and building several hundred schemas costs a process
 * tens of milliseconds it may never need (a sandboxed `ktl build` plans its jail with these
 * descriptors before anything else loads). policySchema() builds the zod schema on demand.
 */
import type { z } from 'zod';

export type ScalarType = 'string' | 'bytes' | 'bool' | 'int32' | 'uint32' | 'int64' | 'uint64';
export type FieldLabel = 'optional' | 'required' | 'repeated';
export type DefaultValue = string | number | bigint | boolean;

export interface EnumValueDescriptor {
  readonly name: string;
  readonly number: number;
  readonly description: string;
}

export interface EnumDescriptor {
  readonly name: string;
  readonly fullName: string;
  readonly description: string;
  readonly values: readonly EnumValueDescriptor[];
  readonly byName: ReadonlyMap<string, EnumValueDescriptor>;
  readonly byNumber: ReadonlyMap<number, EnumValueDescriptor>;
}

export interface FieldDescriptor {
  readonly name: string;
  /** lowerCamelCase name used by ProtoJSON. */
  readonly jsonName: string;
  readonly number: number;
  readonly label: FieldLabel;
  readonly type: ScalarType | 'enum' | 'message';
  readonly description: string;
  /** The value nsjail uses when the field is unset (proto2 default); absent when it has none. */
  readonly default?: DefaultValue;
  readonly enum?: EnumDescriptor;
  readonly message?: MessageDescriptor;
}

export interface MessageDescriptor {
  readonly name: string;
  readonly fullName: string;
  readonly description: string;
  /** Declaration order, as in nsjail's config.proto: the emitter writes fields in this order. */
  readonly fields: readonly FieldDescriptor[];
  readonly byName: ReadonlyMap<string, FieldDescriptor>;
  readonly byJsonName: ReadonlyMap<string, FieldDescriptor>;
}

type FieldSpecBase = Omit<FieldDescriptor, 'name' | 'jsonName'>;
export interface FieldSpec<S extends z.ZodType> {
  readonly spec: FieldSpecBase;
  /** Type only (never set): the field's zod type, for z.infer. */
  readonly schema?: S;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;

export const SCALAR_RANGES = {
  int32: [INT32_MIN, INT32_MAX],
  uint32: [0, UINT32_MAX],
  int64: [INT64_MIN, INT64_MAX],
  uint64: [0n, UINT64_MAX],
} as const;

type ScalarTs = {
  string: z.ZodString;
  bytes: z.ZodCustom<Uint8Array, Uint8Array>;
  bool: z.ZodBoolean;
  int32: z.ZodNumber;
  uint32: z.ZodNumber;
  int64: z.ZodBigInt;
  uint64: z.ZodBigInt;
};

interface ScalarOpts<D> {
  default?: D;
}

/** A field's description with its default, as the zod schema and the JSON Schema show it. */
export function describeDefault(description: string, def: DefaultValue | undefined): string {
  if (def === undefined) return description;
  const shown = typeof def === 'string' && def !== '' ? JSON.stringify(def) : String(def);
  return `${description} Default: ${def === '' ? '""' : shown}.`;
}

function optionalScalar<T extends ScalarType>(type: T) {
  return (
    number: number,
    description: string,
    opts: ScalarOpts<DefaultValue> = {},
  ): FieldSpec<z.ZodOptional<ScalarTs[T]>> => ({
    spec: {
      number,
      label: 'optional',
      type,
      description,
      ...(opts.default !== undefined ? { default: opts.default } : {}),
    },
  });
}

function repeatedScalar<T extends ScalarType>(type: T) {
  return (
    number: number,
    description: string,
  ): FieldSpec<z.ZodOptional<z.ZodArray<ScalarTs[T]>>> => ({
    spec: { number, label: 'repeated', type, description },
  });
}

function requiredScalar<T extends ScalarType>(type: T) {
  return (number: number, description: string): FieldSpec<ScalarTs[T]> => ({
    spec: { number, label: 'required', type, description },
  });
}

/** Field builders, one per protobuf type and label. */
export const field = {
  string: optionalScalar('string'),
  bytes: optionalScalar('bytes'),
  bool: optionalScalar('bool'),
  int32: optionalScalar('int32'),
  uint32: optionalScalar('uint32'),
  int64: optionalScalar('int64'),
  uint64: optionalScalar('uint64'),
  requiredString: requiredScalar('string'),
  repeatedString: repeatedScalar('string'),
  repeatedInt32: repeatedScalar('int32'),
  enum<const V extends readonly [string, ...string[]]>(
    number: number,
    en: EnumDef<V>,
    description: string,
    opts: { default?: V[number] } = {},
  ): FieldSpec<z.ZodOptional<z.ZodEnum<{ [K in V[number]]: K }>>> {
    return {
      spec: {
        number,
        label: 'optional',
        type: 'enum',
        description,
        enum: en.descriptor,
        ...(opts.default !== undefined ? { default: opts.default } : {}),
      },
    };
  },
  message<S extends z.ZodType>(
    number: number,
    msg: MessageDef<S>,
    description: string,
  ): FieldSpec<z.ZodOptional<S>> {
    return {
      spec: { number, label: 'optional', type: 'message', description, message: msg.descriptor },
    };
  },
  repeatedMessage<S extends z.ZodType>(
    number: number,
    msg: MessageDef<S>,
    description: string,
  ): FieldSpec<z.ZodOptional<z.ZodArray<S>>> {
    return {
      spec: { number, label: 'repeated', type: 'message', description, message: msg.descriptor },
    };
  },
};

export interface EnumDef<V extends readonly [string, ...string[]]> {
  readonly descriptor: EnumDescriptor;
  /** Type only (never set): the enum's zod type, for z.infer. */
  readonly schema?: z.ZodEnum<{ [K in V[number]]: K }>;
}

/** An enum whose values are `[name, number, description]` in declaration order. */
export function defineEnum<const V extends readonly [string, ...string[]]>(
  fullName: string,
  description: string,
  names: V,
  values: { [K in keyof V]: readonly [number, string] },
): EnumDef<V> {
  const vals: EnumValueDescriptor[] = names.map((name, i) => {
    const v = values[i] as readonly [number, string];
    return { name, number: v[0], description: v[1] };
  });
  const descriptor: EnumDescriptor = {
    name: fullName.split('.').pop() ?? fullName,
    fullName,
    description,
    values: vals,
    byName: new Map(vals.map((v) => [v.name, v])),
    byNumber: new Map(vals.map((v) => [v.number, v])),
  };
  return { descriptor };
}

export interface MessageDef<S extends z.ZodType> {
  readonly descriptor: MessageDescriptor;
  /** Type only (never set): the message's zod type, for z.infer. */
  readonly schema?: S;
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type ShapeOf<F extends Record<string, { schema?: z.ZodType }>> = {
  [K in keyof F]: NonNullable<F[K]['schema']>;
};

export function defineMessage<
  F extends Record<string, { spec: FieldSpecBase; schema?: z.ZodType }>,
>(
  fullName: string,
  description: string,
  fields: F,
): MessageDef<z.ZodObject<ShapeOf<F>, z.core.$strict>>;
export function defineMessage(
  fullName: string,
  description: string,
  fields: Record<string, { spec: FieldSpecBase }>,
): { descriptor: MessageDescriptor } {
  const list: FieldDescriptor[] = Object.entries(fields).map(([name, f]) => ({
    ...f.spec,
    name,
    jsonName: lowerCamel(name),
  }));
  const descriptor: MessageDescriptor = {
    name: fullName.split('.').pop() ?? fullName,
    fullName,
    description,
    fields: list,
    byName: new Map(list.map((f) => [f.name, f])),
    byJsonName: new Map(list.map((f) => [f.jsonName, f])),
  };
  return { descriptor };
}
