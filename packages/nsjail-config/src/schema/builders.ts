/**
 * Builders that define the policy schema once: each call yields the zod schema for a field
 * *and* the protobuf facts (number, wire type, label, default) the parser, emitter, docs and
 * JSON Schema need. Nothing else in the package restates a field.
 *
 * The zod schemas are built on first use, not when the module loads: the parser, validator,
 * emitter and `assertPolicy` work from the descriptors alone, and building several hundred
 * zod schemas costs a process tens of milliseconds it may never need (a sandboxed `ktl build`
 * starts its jail before anything asks for one).
 */
import { z } from 'zod';

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
  readonly schema: z.ZodType;
}

export interface MessageDescriptor {
  readonly name: string;
  readonly fullName: string;
  readonly description: string;
  /** Declaration order, as in nsjail's config.proto: the emitter writes fields in this order. */
  readonly fields: readonly FieldDescriptor[];
  readonly byName: ReadonlyMap<string, FieldDescriptor>;
  readonly byJsonName: ReadonlyMap<string, FieldDescriptor>;
  readonly schema: z.ZodType;
}

/** Maps a zod schema built here back to the message it describes. */
export const messageRegistry = new WeakMap<z.ZodType, MessageDescriptor>();

type FieldSpecBase = Omit<FieldDescriptor, 'name' | 'jsonName' | 'schema'>;
export interface FieldSpec<S extends z.ZodType> {
  readonly spec: FieldSpecBase;
  /** Builds the field's zod schema (once). */
  readonly schema: () => S;
}

/** `make()` on the first call, the same value on every later one. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
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

function scalarSchema<T extends ScalarType>(type: T): ScalarTs[T] {
  return anyScalar(type) as unknown as ScalarTs[T];
}

function anyScalar(type: ScalarType): z.ZodType {
  switch (type) {
    case 'string':
      return z.string();
    case 'bytes':
      return z.instanceof(Uint8Array);
    case 'bool':
      return z.boolean();
    case 'int32':
      return z.number().int().min(INT32_MIN).max(INT32_MAX);
    case 'uint32':
      return z.number().int().min(0).max(UINT32_MAX);
    case 'int64':
      return z.bigint().min(INT64_MIN).max(INT64_MAX);
    case 'uint64':
      return z.bigint().min(0n).max(UINT64_MAX);
  }
}

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

function describeDefault(description: string, def: DefaultValue | undefined): string {
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
    schema: once(
      () =>
        scalarSchema(type)
          .describe(describeDefault(description, opts.default))
          .optional() as z.ZodOptional<ScalarTs[T]>,
    ),
  });
}

function repeatedScalar<T extends ScalarType>(type: T) {
  return (
    number: number,
    description: string,
  ): FieldSpec<z.ZodOptional<z.ZodArray<ScalarTs[T]>>> => ({
    spec: { number, label: 'repeated', type, description },
    schema: once(() => z.array(scalarSchema(type)).describe(description).optional()),
  });
}

function requiredScalar<T extends ScalarType>(type: T) {
  return (number: number, description: string): FieldSpec<ScalarTs[T]> => ({
    spec: { number, label: 'required', type, description },
    schema: once(() => scalarSchema(type).describe(`${description} Required.`) as ScalarTs[T]),
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
      schema: once(() => en.schema.describe(describeDefault(description, opts.default)).optional()),
    };
  },
  message<S extends z.ZodType>(
    number: number,
    msg: MessageDef<S>,
    description: string,
  ): FieldSpec<z.ZodOptional<S>> {
    return {
      spec: { number, label: 'optional', type: 'message', description, message: msg.descriptor },
      schema: once(() => msg.schema.describe(description).optional() as z.ZodOptional<S>),
    };
  },
  repeatedMessage<S extends z.ZodType>(
    number: number,
    msg: MessageDef<S>,
    description: string,
  ): FieldSpec<z.ZodOptional<z.ZodArray<S>>> {
    return {
      spec: { number, label: 'repeated', type: 'message', description, message: msg.descriptor },
      schema: once(() => z.array(msg.schema).describe(description).optional()),
    };
  },
};

export interface EnumDef<V extends readonly [string, ...string[]]> {
  readonly descriptor: EnumDescriptor;
  readonly schema: z.ZodEnum<{ [K in V[number]]: K }>;
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
  const schema = once(() => z.enum(names).describe(description) as EnumDef<V>['schema']);
  return {
    descriptor,
    get schema() {
      return schema();
    },
  };
}

export interface MessageDef<S extends z.ZodType> {
  readonly descriptor: MessageDescriptor;
  readonly schema: S;
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type ShapeOf<F extends Record<string, { schema: () => z.ZodType }>> = {
  [K in keyof F]: ReturnType<F[K]['schema']>;
};

export function defineMessage<
  F extends Record<string, { spec: FieldSpecBase; schema: () => z.ZodType }>,
>(
  fullName: string,
  description: string,
  fields: F,
): MessageDef<z.ZodObject<ShapeOf<F>, z.core.$strict>>;
export function defineMessage(
  fullName: string,
  description: string,
  fields: Record<string, { spec: FieldSpecBase; schema: () => z.ZodType }>,
): { descriptor: MessageDescriptor; schema: z.ZodType } {
  const list: FieldDescriptor[] = Object.entries(fields).map(
    ([name, f]) =>
      Object.defineProperty({ ...f.spec, name, jsonName: lowerCamel(name) }, 'schema', {
        get: f.schema,
        enumerable: true,
      }) as FieldDescriptor,
  );
  const schema = once(() => {
    const shape: Record<string, z.ZodType> = {};
    for (const [k, f] of Object.entries(fields)) shape[k] = f.schema();
    const built: z.ZodType = z.strictObject(shape).describe(description);
    messageRegistry.set(built, descriptor);
    return built;
  });
  const descriptor: MessageDescriptor = {
    name: fullName.split('.').pop() ?? fullName,
    fullName,
    description,
    fields: list,
    byName: new Map(list.map((f) => [f.name, f])),
    byJsonName: new Map(list.map((f) => [f.jsonName, f])),
    get schema() {
      return schema();
    },
  };
  return {
    descriptor,
    get schema() {
      return schema();
    },
  };
}
