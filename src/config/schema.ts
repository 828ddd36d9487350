// The configuration of one Shadowplane process. Every key has a default, so an empty
// file (or none) runs the embedded default: file registry and rules from examples/.
// Keys are snake_case, as in Envoy's own YAML; each maps to an environment variable
// SHADOWPLANE_<PATH> (e.g. xds.address → SHADOWPLANE_XDS_ADDRESS).
import { z } from 'zod';
import { DEFAULT_ROUTING_TAGS } from '../model/subsets.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:18000')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'port must be at most 65535');

const tlsSchema = z
  .object({
    cert_file: z.string().min(1).describe('PEM certificate the xDS server presents'),
    key_file: z.string().min(1).describe('PEM private key of that certificate'),
    ca_file: z.string().min(1).optional().describe('PEM CA bundle; when set, clients must present a certificate it signed'),
  })
  .strict();

export const configSchema = z
  .object({
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        format: z.enum(['json', 'pretty']).default('json').describe('json for machines, pretty for people'),
      })
      .strict()
      .default({ level: 'info', format: 'json' }),
    xds: z
      .object({
        address: hostPort.default('127.0.0.1:18000').describe('where the ADS server listens'),
        max_message_bytes: z.number().int().min(1024).default(64 * 1024 * 1024),
        keepalive_time_ms: z.number().int().min(1000).default(30_000),
        keepalive_timeout_ms: z.number().int().min(100).default(10_000),
        tls: tlsSchema.optional(),
      })
      .strict()
      .default({ address: '127.0.0.1:18000', max_message_bytes: 64 * 1024 * 1024, keepalive_time_ms: 30_000, keepalive_timeout_ms: 10_000 }),
    admin: z
      .object({
        address: hostPort.default('127.0.0.1:18080').describe('where the admin HTTP API listens (keep it on loopback or behind auth)'),
        token: z.string().min(16, 'use at least 16 characters').optional().describe('bearer token that rule changes must carry; set it through SHADOWPLANE_ADMIN_TOKEN'),
      })
      .strict()
      .default({ address: '127.0.0.1:18080' }),
    consul: z
      .object({
        address: hostPort.default('127.0.0.1:8500').describe("a Consul agent's HTTP API"),
        token: z.string().min(1).optional().describe('ACL token (SHADOWPLANE_CONSUL_TOKEN)'),
        datacenter: z.string().min(1).optional(),
      })
      .strict()
      .default({ address: '127.0.0.1:8500' }),
    registry: z
      .object({
        source: z.enum(['file', 'consul']).default('file').describe('file: registry.path; consul: the catalog of consul.address'),
        path: z.string().min(1).default('examples/registry').describe('file registry: a folder of service definitions'),
        routing_tags: z
          .array(z.string().regex(/^[a-z0-9][a-z0-9.-]*\*?$/, 'a tag, or a prefix ending in * (dev-*)'))
          .min(1)
          .default([...DEFAULT_ROUTING_TAGS])
          .describe('tags that put an instance in a subset of that name; comma-separated in the environment'),
      })
      .strict()
      .default({ source: 'file', path: 'examples/registry', routing_tags: [...DEFAULT_ROUTING_TAGS] }),
    rules: z
      .object({
        store: z.enum(['directory', 'consul']).default('directory').describe('directory: rules.path; consul: KV under rules.prefix'),
        path: z.string().min(1).default('examples/rules').describe('a folder of rule documents (<name>.yaml)'),
        prefix: z.string().min(1).default('shadowplane/rules').describe('Consul KV prefix of the rule documents'),
      })
      .strict()
      .default({ store: 'directory', path: 'examples/rules', prefix: 'shadowplane/rules' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
