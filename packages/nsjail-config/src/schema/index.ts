/**
 * @ktl/nsjail-config/schema: the policy's zod schema and its JSON Schema. The only entry that
 * loads zod (most of the package's installed size and ~45 ms of start-up): the main entry
 * parses, validates and emits policies from the descriptors alone.
 */
export { policyJsonSchema } from '../json-schema';
export { policySchema } from './zod';
