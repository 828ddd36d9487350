// The JSON Schema of a rule document, generated from the zod schema so the two never
// drift. Published as docs/rules.schema.json (a test fails when that file is stale);
// editors use it through `# yaml-language-server: $schema=…` for completion and
// inline errors while typing. It covers the shape only: the checks that need several
// fields, other files, the clock or the registry are validate-rules.ts's.
import { z } from 'zod';
import { ruleDocumentSchema } from './rules.js';

/**
 * Draft-07, the draft that yaml-language-server, VS Code and JetBrains IDEs all read.
 * `exactlyOneOf` (a meta of ours) becomes `oneOf: [{required: [a]}, {required: [b]}…]`,
 * so editors flag "exact and prefix" as they are typed.
 */
export function rulesJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ruleDocumentSchema, {
    target: 'draft-7',
    io: 'input',
    override: ({ jsonSchema }) => {
      const fields = (jsonSchema as { exactlyOneOf?: string[] }).exactlyOneOf;
      if (!fields) return;
      delete (jsonSchema as { exactlyOneOf?: string[] }).exactlyOneOf;
      jsonSchema.oneOf = fields.map((f) => ({ required: [f] }));
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: 'Shadowplane rule document',
    description: 'Routing rules for Shadowplane: header and claim routes, splits, mirrors, dev and tenant routes, JWT issuers, the access gateway. Reference: docs/rules.md',
    ...rest,
  };
}
