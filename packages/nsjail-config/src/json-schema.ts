/** JSON Schema of the policy (its ProtoJSON-ish object form), for editors. */
import { z } from 'zod';
import { policySchema } from './schema/zod';

export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema(), {
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as { _zod?: { def?: { type?: string } } })._zod?.def;
      // 64-bit integers travel as decimal strings in ProtoJSON; bytes as base64.
      if (def?.type === 'bigint')
        Object.assign(ctx.jsonSchema, { type: 'string', pattern: '^-?[0-9]+$' });
      if (def?.type === 'custom')
        Object.assign(ctx.jsonSchema, { type: 'string', contentEncoding: 'base64' });
    },
  }) as Record<string, unknown>;
}
