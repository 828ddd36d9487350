// Checks resource objects against the constraints Envoy's protos declare with
// protoc-gen-validate (PGV): `(validate.rules)` on fields and `(validate.required)` on
// oneofs. Envoy runs the same generated checks on every resource and every typed_config
// it accepts, and NACKs the whole update when one fails; running them here lets a
// rule that would produce such a resource be refused with the rule's name instead.
//
// The walk follows the object alongside its protobufjs Type: into sub-messages,
// repeated fields, maps and `google.protobuf.Any` payloads (by their `@type`). Each
// Type is compiled once into a table of per-field checks; a field that is absent
// costs nothing unless its absence itself fails (proto3 reads an absent scalar as its
// zero value, and PGV checks that value: an absent `stat_prefix` fails `min_len: 1`).
//
// Not covered (each recorded by `unsupportedRules()`, which a test keeps empty for the
// protos we load): the string formats email/hostname/ip/ipv4/ipv6/uri/uri_ref/address/
// uuid, bytes const/prefix/suffix/contains/in/not_in/pattern/ip*, timestamp lt_now/
// gt_now/within, and `pattern`s that use RE2 syntax JavaScript lacks. None of them
// occurs in the protos loaded today.
//
// Two checks are not PGV's but catch what protobufjs would silently change: an enum
// written by a name the enum does not have (encoded as 0, so `type: 'EDSX'` reaches
// Envoy as STATIC) and an Any whose `@type` is not a loaded message (encoded as an
// empty Any, which Envoy refuses as an unregistered extension); rules `enum.name`
// (or `enum.defined_only` where declared) and `any.type`.
import { Buffer } from 'node:buffer';
import protobuf from 'protobufjs';
import { envoyRoot } from './protos.js';
import { TO_OBJECT_OPTIONS, messageNameOf } from './resources.js';

export interface PgvViolation {
  /** Where, in the resource's field names: `virtual_hosts[0].routes[2].match.headers[0].name`. */
  readonly path: string;
  /** The violated annotation, as written after `(validate.rules).`: `string.min_len`. */
  readonly rule: string;
  /** What the value must be: `must be at least 1 character`. */
  readonly message: string;
}

/**
 * Every PGV violation in `object`, a resource (or any message) of type `typeUrl` in
 * Envoy's field names. Empty when Envoy's own validation would accept it.
 */
export function validateResource(typeUrl: string, object: Record<string, unknown>): PgvViolation[] {
  const plan = planForUrl(typeUrl);
  if (plan === undefined) throw new Error(`validateResource: unknown message type ${typeUrl}`);
  const out: PgvViolation[] = [];
  if (plan !== null) visitMessage(plan, object, '', out);
  return out;
}

/**
 * The rules in the loaded protos this module cannot check, as `Type.field: rule`.
 * Compiles every message type, so it is for tests, not for the request path.
 */
export function unsupportedRules(): string[] {
  const all = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) planFor(nested);
      if (nested instanceof protobuf.Namespace) all(nested);
    }
  };
  all(envoyRoot());
  return [...unsupported].sort();
}

// ---------------------------------------------------------------------------------
// Compiled plans

type Obj = Record<string, unknown>;
type Out = PgvViolation[];
interface Failure {
  readonly rule: string;
  readonly message: string;
}
/** Checks one present value; `path` names it. */
type ValueCheck = (value: unknown, path: string, out: Out) => void;
/** One constraint on one value: why it fails, or undefined. */
type Test = (value: unknown) => Failure | undefined;

interface MessagePlan {
  /** Checks for fields that may be present, by field name (null prototype). */
  readonly present: Record<string, ValueCheck>;
  /** Fields whose absence already fails, with the failures. */
  readonly absent: readonly { key: string; failures: readonly Failure[] }[];
  /** `(validate.required)` oneofs. */
  readonly requiredOneofs: readonly { name: string; members: readonly string[] }[];
}

const plans = new Map<protobuf.Type, MessagePlan>();
const plansByUrl = new Map<string, MessagePlan | null | undefined>();
const unsupported = new Set<string>();

function visitMessage(plan: MessagePlan, object: Obj, path: string, out: Out): void {
  for (const key in object) {
    const check = plan.present[key];
    if (check === undefined) continue;
    const value = object[key];
    if (value !== undefined && value !== null) check(value, join(path, key), out);
  }
  for (const { key, failures } of plan.absent) {
    if (object[key] === undefined || object[key] === null) {
      for (const f of failures) out.push({ path: join(path, key), rule: f.rule, message: f.message });
    }
  }
  for (const { name, members } of plan.requiredOneofs) {
    if (!members.some((m) => object[m] !== undefined && object[m] !== null)) {
      out.push({ path: join(path, name), rule: 'oneof.required', message: `one of ${members.join(', ')} must be set` });
    }
  }
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/** The plan of a type URL's message; null when it has nothing to check, undefined when unknown. */
function planForUrl(typeUrl: string): MessagePlan | null | undefined {
  if (plansByUrl.has(typeUrl)) return plansByUrl.get(typeUrl);
  const found = envoyRoot().lookup(`.${messageNameOf(typeUrl)}`);
  const plan = found instanceof protobuf.Type ? (needsVisit(found) ? planFor(found) : null) : undefined;
  plansByUrl.set(typeUrl, plan);
  return plan;
}

function planFor(type: protobuf.Type): MessagePlan {
  let plan = plans.get(type);
  if (plan) return plan;
  const present: Record<string, ValueCheck> = Object.create(null) as Record<string, ValueCheck>;
  const absent: { key: string; failures: Failure[] }[] = [];
  const requiredOneofs: { name: string; members: string[] }[] = [];
  plan = { present, absent, requiredOneofs };
  plans.set(type, plan);
  if (messageOption(type, '(validate.disabled)') === true || messageOption(type, '(validate.ignored)') === true) return plan;

  for (const field of type.fieldsArray) {
    field.resolve();
    const compiled = compileField(type, field);
    if (compiled.check) present[field.name] = compiled.check;
    // A oneof member (or a proto3 `optional` field) has presence: absent is not zero.
    if (compiled.whenAbsent.length > 0 && field.partOf === null) absent.push({ key: field.name, failures: compiled.whenAbsent });
  }
  for (const oneof of type.oneofsArray) {
    if (oneofRequired(oneof)) requiredOneofs.push({ name: oneof.name, members: [...oneof.oneof] });
  }
  return plan;
}

// ---------------------------------------------------------------------------------
// Reading the annotations

/** PGV's FieldRules as protobufjs parses them: snake_case keys, nested objects. */
interface Rules {
  [kind: string]: Record<string, unknown> | undefined;
}

function fieldRules(field: protobuf.Field): Rules {
  let merged: Obj = {};
  for (const option of (field.parsedOptions ?? []) as unknown as Obj[]) {
    const rules = option['(validate.rules)'];
    if (isObj(rules)) merged = deepMerge(merged, rules);
  }
  return merged as Rules;
}

function messageOption(type: protobuf.Type, name: string): unknown {
  for (const option of (type.parsedOptions ?? []) as unknown as Obj[]) if (name in option) return option[name];
  return undefined;
}

function oneofRequired(oneof: protobuf.OneOf): boolean {
  for (const option of (oneof.parsedOptions ?? []) as unknown as Obj[]) if (option['(validate.required)'] === true) return true;
  return false;
}

function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Records rule keys this module has no check for, so none is skipped unnoticed. */
function noteUnknownKeys(where: string, prefix: string, rules: Obj | undefined, known: readonly string[]): void {
  if (!rules) return;
  for (const key of Object.keys(rules)) if (!known.includes(key)) unsupported.add(`${where}: ${prefix}${key}`);
}

// ---------------------------------------------------------------------------------
// Fields

interface CompiledField {
  check: ValueCheck | undefined;
  /** What the field's absence fails (proto3 zero value, `required`, `min_items`). */
  whenAbsent: Failure[];
}

function compileField(type: protobuf.Type, field: protobuf.Field): CompiledField {
  const rules = fieldRules(field);
  const where = `${type.fullName.slice(1)}.${field.name}`;
  if (field.map) return compileMap(where, field, rules);
  if (field.repeated) return compileRepeated(where, field, rules);
  const element = compileElement(where, field, rules, '');
  return { check: element.check, whenAbsent: element.whenAbsent };
}

function compileRepeated(where: string, field: protobuf.Field, rules: Rules): CompiledField {
  const r = rules.repeated ?? {};
  noteUnknownKeys(where, 'repeated.', r, ['min_items', 'max_items', 'unique', 'items', 'ignore_empty']);
  noteUnknownKeys(where, '', rules, ['repeated']);
  const item = compileElement(where, field, isObj(r.items) ? (r.items as Rules) : {}, 'repeated.items.');
  const min = num(r.min_items);
  const max = r.max_items === undefined ? Infinity : num(r.max_items);
  const unique = r.unique === true;
  const ignoreEmpty = r.ignore_empty === true;
  const tooFew: Failure | undefined = min > 0 ? { rule: 'repeated.min_items', message: `must have at least ${plural(min, 'item')}` } : undefined;
  const whenAbsent = tooFew && !ignoreEmpty ? [tooFew] : [];
  if (!tooFew && max === Infinity && !unique && !item.check) return { check: undefined, whenAbsent };
  const check: ValueCheck = (value, path, out) => {
    if (!Array.isArray(value)) return;
    if (value.length === 0 && ignoreEmpty) return;
    if (tooFew && value.length < min) out.push({ path, ...tooFew });
    if (value.length > max) out.push({ path, rule: 'repeated.max_items', message: `must have at most ${plural(max, 'item')} (has ${value.length})` });
    if (unique && new Set(value.map(uniqueKey)).size !== value.length) out.push({ path, rule: 'repeated.unique', message: 'must not repeat an item' });
    if (item.check) for (let i = 0; i < value.length; i++) if (value[i] !== undefined && value[i] !== null) item.check(value[i], `${path}[${i}]`, out);
  };
  return { check, whenAbsent };
}

function compileMap(where: string, field: protobuf.Field, rules: Rules): CompiledField {
  const r = rules.map ?? {};
  noteUnknownKeys(where, 'map.', r, ['min_pairs', 'max_pairs', 'no_sparse', 'keys', 'values', 'ignore_empty']);
  noteUnknownKeys(where, '', rules, ['map']);
  const keyType = (field as unknown as protobuf.MapField).keyType;
  const keys = compileScalar(where, keyType, isObj(r.keys) ? (r.keys as Rules) : {}, 'map.keys.');
  const values = compileElement(where, field, isObj(r.values) ? (r.values as Rules) : {}, 'map.values.');
  const min = num(r.min_pairs);
  const max = r.max_pairs === undefined ? Infinity : num(r.max_pairs);
  const noSparse = r.no_sparse === true;
  const ignoreEmpty = r.ignore_empty === true;
  const tooFew: Failure | undefined = min > 0 ? { rule: 'map.min_pairs', message: `must have at least ${plural(min, 'entry', 'entries')}` } : undefined;
  const whenAbsent = tooFew && !ignoreEmpty ? [tooFew] : [];
  if (!tooFew && max === Infinity && !noSparse && !keys.check && !values.check) return { check: undefined, whenAbsent };
  const check: ValueCheck = (value, path, out) => {
    if (!isObj(value)) return;
    const entries = Object.entries(value);
    if (entries.length === 0 && ignoreEmpty) return;
    if (tooFew && entries.length < min) out.push({ path, ...tooFew });
    if (entries.length > max) out.push({ path, rule: 'map.max_pairs', message: `must have at most ${plural(max, 'entry', 'entries')} (has ${entries.length})` });
    for (const [k, v] of entries) {
      const entryPath = `${path}[${JSON.stringify(k)}]`;
      keys.check?.(k, entryPath, out);
      if (v === undefined || v === null) {
        if (noSparse) out.push({ path: entryPath, rule: 'map.no_sparse', message: 'must have a value' });
      } else values.check?.(v, entryPath, out);
    }
  };
  return { check, whenAbsent };
}

/**
 * The check of one value of the field's type: the field itself, one item of a repeated
 * field, or one value of a map. `prefix` is where its rules sit (`repeated.items.`).
 */
function compileElement(where: string, field: protobuf.Field, rules: Rules, prefix: string): CompiledField {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return compileEnum(where, resolved, rules, prefix);
  if (resolved instanceof protobuf.Type) return compileMessageField(where, resolved, rules, prefix);
  return compileScalar(where, field.type, rules, prefix);
}

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};

function compileMessageField(where: string, type: protobuf.Type, rules: Rules, prefix: string): CompiledField {
  const name = type.fullName;
  const messageRules = rules.message ?? {};
  noteUnknownKeys(where, `${prefix}message.`, messageRules, ['required', 'skip']);
  const required: Failure | undefined = messageRules.required === true ? { rule: `${prefix}message.required`, message: 'is required' } : undefined;
  const withRequired = (c: CompiledField): CompiledField => ({ check: c.check, whenAbsent: [...(required ? [required] : []), ...c.whenAbsent] });

  if (name === '.google.protobuf.Duration' || name === '.google.protobuf.Timestamp') {
    return withRequired(compileTime(where, name === '.google.protobuf.Duration' ? 'duration' : 'timestamp', rules, prefix));
  }
  if (name === '.google.protobuf.Any') return withRequired(compileAny(where, rules, prefix));
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) {
    // PGV applies a wrapper's scalar rules to the wrapped value, when the wrapper is set.
    // `{value: 3}` is protobufjs' shape; a bare 3 is proto JSON's, kept in case a
    // converter for it is registered.
    noteUnknownKeys(where, prefix, rules, ['message', wrapped]);
    const check = compileScalar(where, wrapped, rules, prefix, true).check;
    const unwrap = (value: unknown): unknown => (isObj(value) ? (value.value ?? zeroOf(wrapped)) : value);
    return { check: check && ((value, path, out) => check(unwrap(value), path, out)), whenAbsent: required ? [required] : [] };
  }
  // Envoy writes `any = {required: true}` on some plain message fields; PGV reads it as
  // message.required (ExtensionConfigSource.config_source).
  noteUnknownKeys(where, `${prefix}any.`, rules.any, ['required']);
  noteUnknownKeys(where, prefix, rules, ['message', 'any']);
  const anyRequired: Failure | undefined = rules.any?.required === true ? { rule: `${prefix}any.required`, message: 'is required' } : undefined;
  const whenAbsent = [required, anyRequired].filter((f): f is Failure => f !== undefined);
  // google.protobuf's own types carry no rules, and Struct/Value are written as plain JSON.
  const skip = messageRules.skip === true || name.startsWith('.google.protobuf.') || !needsVisit(type);
  return { check: skip ? undefined : lazyVisitor(type), whenAbsent };
}

/** Recursion through a plan compiled on first use, so recursive types compile once. */
function lazyVisitor(type: protobuf.Type): ValueCheck {
  let plan: MessagePlan | undefined;
  return (value, path, out) => {
    if (isObj(value)) visitMessage((plan ??= planFor(type)), value, path, out);
  };
}

function compileAny(where: string, rules: Rules, prefix: string): CompiledField {
  const r = rules.any ?? {};
  noteUnknownKeys(where, `${prefix}any.`, r, ['required', 'in', 'not_in']);
  noteUnknownKeys(where, prefix, rules, ['message', 'any']);
  const allowed = list(r.in).map(String);
  const denied = list(r.not_in).map(String);
  const required: Failure | undefined = r.required === true ? { rule: `${prefix}any.required`, message: 'is required' } : undefined;
  const check: ValueCheck = (value, path, out) => {
    if (!isObj(value)) return;
    const typeUrl = typeof value['@type'] === 'string' ? value['@type'] : typeof value.type_url === 'string' ? value.type_url : '';
    if (allowed.length > 0 && !allowed.includes(typeUrl)) out.push({ path, rule: `${prefix}any.in`, message: `must have a type in ${allowed.join(', ')}` });
    if (denied.includes(typeUrl)) out.push({ path, rule: `${prefix}any.not_in`, message: `must not have type ${typeUrl}` });
    const plan = typeUrl === '' ? undefined : planForUrl(typeUrl);
    const inline = '@type' in value || typeUrl === '';
    if (plan === undefined) {
      // Pre-encoded bytes of a type we do not load are passed on as they are.
      if (inline) out.push({ path, rule: 'any.type', message: `must name a message type this control plane loads (got ${JSON.stringify(typeUrl)})` });
      return;
    }
    const payload = plan === null ? undefined : inline ? value : decodePayload(value.value, typeUrl);
    if (plan !== null && payload) visitMessage(plan, payload, path, out);
  };
  return { check, whenAbsent: required ? [required] : [] };
}

/** The payload of an Any given as `type_url` and `value` bytes (or base64), as an object. */
function decodePayload(value: unknown, typeUrl: string): Obj | undefined {
  const bytes = value instanceof Uint8Array ? value : typeof value === 'string' ? Buffer.from(value, 'base64') : undefined;
  const found = envoyRoot().lookup(`.${messageNameOf(typeUrl)}`);
  if (!bytes || !(found instanceof protobuf.Type)) return undefined;
  try {
    return found.toObject(found.decode(bytes), TO_OBJECT_OPTIONS);
  } catch {
    return undefined;
  }
}

/**
 * Whether anything reachable from `type` has a check; lets the walk skip subtrees
 * like metadata. Any fields count: their payload could be anything.
 */
const visitMemo = new Map<protobuf.Type, boolean>();
function needsVisit(type: protobuf.Type): boolean {
  const memo = visitMemo.get(type);
  if (memo !== undefined) return memo;
  const seen = new Set<protobuf.Type>([type]);
  const queue = [type];
  let found = false;
  while (!found && queue.length > 0) {
    const t = queue.pop()!;
    if (t.fullName.startsWith('.google.protobuf.')) continue;
    if (hasOwnChecks(t)) found = true;
    for (const f of t.fieldsArray) {
      const r = f.resolvedType;
      if (r instanceof protobuf.Type && !seen.has(r)) {
        seen.add(r);
        queue.push(r);
      }
    }
  }
  visitMemo.set(type, found);
  return found;
}

const ownChecksMemo = new Map<protobuf.Type, boolean>();
function hasOwnChecks(type: protobuf.Type): boolean {
  let has = ownChecksMemo.get(type);
  if (has === undefined) {
    has =
      type.oneofsArray.some(oneofRequired) ||
      type.fieldsArray.some((f) => {
        f.resolve();
        const r = f.resolvedType;
        return Object.keys(fieldRules(f)).length > 0 || r instanceof protobuf.Enum || r?.fullName === '.google.protobuf.Any';
      });
    ownChecksMemo.set(type, has);
  }
  return has;
}

// ---------------------------------------------------------------------------------
// Scalars, enums, durations

/** A check from a list of tests, and the failures of the zero value (what absence means). */
function fromTests(tests: Test[], zero: unknown): CompiledField {
  if (tests.length === 0) return { check: undefined, whenAbsent: [] };
  const check: ValueCheck = (value, path, out) => {
    for (const test of tests) {
      const failure = test(value);
      if (failure) out.push({ path, rule: failure.rule, message: failure.message });
    }
  };
  return { check, whenAbsent: tests.map((t) => t(zero)).filter((f): f is Failure => f !== undefined) };
}

const INT32 = ['int32', 'sint32', 'sfixed32'];
const UINT32 = ['uint32', 'fixed32'];
const INT64 = ['int64', 'sint64', 'sfixed64'];
const UINT64 = ['uint64', 'fixed64'];
const NUMERIC_KEYS = ['const', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in', 'ignore_empty'];

function zeroOf(kind: string): unknown {
  return kind === 'string' ? '' : kind === 'bytes' ? '' : kind === 'bool' ? false : 0;
}

/** `kind` is the proto scalar type; the rules for it sit under the same name. */
function compileScalar(where: string, kind: string, rules: Rules, prefix: string, wrapper = false): CompiledField {
  if (!wrapper) noteUnknownKeys(where, prefix, rules, [kind]);
  const r = rules[kind];
  if (!r) return { check: undefined, whenAbsent: [] };
  const rule = `${prefix}${kind}`;
  if (kind === 'string') return fromTests(stringTests(where, rule, r), '');
  if (kind === 'bytes') return fromTests(bytesTests(where, rule, r), '');
  if (kind === 'bool') {
    noteUnknownKeys(where, `${rule}.`, r, ['const']);
    const want = r.const;
    const tests: Test[] = typeof want === 'boolean' ? [(v) => (typeof v !== 'boolean' || v === want ? undefined : { rule: `${rule}.const`, message: `must be ${want}` })] : [];
    return fromTests(tests, false);
  }
  noteUnknownKeys(where, `${rule}.`, r, NUMERIC_KEYS);
  const parse = numberParser(kind);
  if (!parse) return { check: undefined, whenAbsent: [] };
  return fromTests(rangeTests(rule, r, parse, String), 0);
}

type Comparable = number | bigint;

function numberParser(kind: string): ((v: unknown) => Comparable | undefined) | undefined {
  if (kind === 'double') return toNumber;
  if (kind === 'float') return (v) => mapDefined(toNumber(v), Math.fround);
  // As protobufjs encodes them: -1 in a uint32 reaches Envoy as 4294967295.
  if (UINT32.includes(kind)) return (v) => mapDefined(toNumber(v), (n) => n >>> 0);
  if (INT32.includes(kind)) return (v) => mapDefined(toNumber(v), (n) => n | 0);
  if (UINT64.includes(kind)) return (v) => mapDefined(toBigInt(v), (n) => BigInt.asUintN(64, n));
  if (INT64.includes(kind)) return (v) => mapDefined(toBigInt(v), (n) => BigInt.asIntN(64, n));
  return undefined;
}

const mapDefined = <T, U>(v: T | undefined, f: (v: T) => U): U | undefined => (v === undefined ? undefined : f(v));

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isNaN(n) ? undefined : n;
  }
  const long = longBits(v);
  return long === undefined ? undefined : Number(long);
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : undefined;
  if (typeof v === 'string') return /^\s*[-+]?\d+\s*$/.test(v) ? BigInt(v.trim()) : undefined;
  return longBits(v);
}

/** A protobufjs `Long` ({low, high, unsigned}) as a bigint. */
function longBits(v: unknown): bigint | undefined {
  if (!isObj(v) || typeof v.low !== 'number' || typeof v.high !== 'number') return undefined;
  const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned === true ? bits : BigInt.asIntN(64, bits);
}

/**
 * PGV's comparisons: const, in, not_in and a range. When both bounds are given and
 * the upper is not above the lower (`gt: 10, lt: 5`), PGV means "outside" the range.
 */
function rangeTests<T extends Comparable>(rule: string, r: Obj, parse: (v: unknown) => T | undefined, show: (v: T) => string): Test[] {
  const bound = (key: string): T | undefined => (r[key] === undefined ? undefined : parse(r[key]));
  const constant = bound('const');
  const lowerKey = r.gt !== undefined ? 'gt' : r.gte !== undefined ? 'gte' : undefined;
  const upperKey = r.lt !== undefined ? 'lt' : r.lte !== undefined ? 'lte' : undefined;
  const lower = lowerKey && bound(lowerKey);
  const upper = upperKey && bound(upperKey);
  const allowed = list(r.in).map(parse);
  const denied = list(r.not_in).map(parse);
  const ignoreEmpty = r.ignore_empty === true;
  const tests: Test[] = [];
  const above = (v: T): boolean => lower === undefined || (lowerKey === 'gt' ? v > lower : v >= lower);
  const below = (v: T): boolean => upper === undefined || (upperKey === 'lt' ? v < upper : v <= upper);
  const words: Record<string, string> = { gt: 'greater than', gte: 'at least', lt: 'less than', lte: 'at most' };

  if (constant !== undefined) tests.push(test(rule, 'const', parse, (v) => v === constant, () => `must equal ${show(constant)}`));
  if (lower !== undefined && upper !== undefined) {
    const range = `${lowerKey === 'gt' ? '(' : '['}${show(lower)}, ${show(upper)}${upperKey === 'lt' ? ')' : ']'}`;
    if (upper > lower) {
      tests.push(test(rule, lowerKey!, parse, above, (v) => `must be in range ${range} (got ${show(v)})`));
      tests.push(test(rule, upperKey!, parse, below, (v) => `must be in range ${range} (got ${show(v)})`));
    } else {
      tests.push(test(rule, lowerKey!, parse, (v) => above(v) || below(v), (v) => `must be outside range ${range} (got ${show(v)})`));
    }
  } else if (lower !== undefined) {
    tests.push(test(rule, lowerKey!, parse, above, (v) => `must be ${words[lowerKey!]} ${show(lower)} (got ${show(v)})`));
  } else if (upper !== undefined) {
    tests.push(test(rule, upperKey!, parse, below, (v) => `must be ${words[upperKey!]} ${show(upper)} (got ${show(v)})`));
  }
  if (allowed.length > 0) {
    tests.push(test(rule, 'in', parse, (v) => allowed.includes(v), (v) => `must be one of ${allowed.map((a) => (a === undefined ? '?' : show(a))).join(', ')} (got ${show(v)})`));
  }
  if (denied.length > 0) tests.push(test(rule, 'not_in', parse, (v) => !denied.includes(v), (v) => `must not be ${show(v)}`));
  return ignoreEmpty ? tests.map((t) => (v) => (parse(v) == 0 ? undefined : t(v))) : tests;
}

function test<T>(rule: string, key: string, parse: (v: unknown) => T | undefined, ok: (v: T) => boolean, message: (v: T) => string): Test {
  return (value) => {
    const v = parse(value);
    return v === undefined || ok(v) ? undefined : { rule: `${rule}.${key}`, message: message(v) };
  };
}

function compileEnum(where: string, en: protobuf.Enum, rules: Rules, prefix: string): CompiledField {
  noteUnknownKeys(where, prefix, rules, ['enum']);
  const r = rules.enum ?? {};
  noteUnknownKeys(where, `${prefix}enum.`, r, ['const', 'defined_only', 'in', 'not_in']);
  const rule = `${prefix}enum`;
  const enumName = en.fullName.slice(1);
  const parse = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && Object.hasOwn(en.values, v) ? en.values[v] : undefined);
  const show = (n: number): string => en.valuesById[n] ?? String(n);
  const tests: Test[] = [
    (v) => (typeof v === 'string' && !Object.hasOwn(en.values, v) ? { rule: r.defined_only === true ? `${rule}.defined_only` : `${rule}.name`, message: `${JSON.stringify(v)} is not a value of ${enumName}` } : undefined),
  ];
  if (r.defined_only === true) tests.push(test(rule, 'defined_only', parse, (n) => en.valuesById[n] !== undefined, (n) => `${n} is not a value of ${enumName}`));
  tests.push(...rangeTests(rule, { const: r.const, in: r.in, not_in: r.not_in }, parse, show));
  return fromTests(tests, 0);
}

/** Durations and timestamps: `{seconds, nanos}` compared as nanoseconds. */
function compileTime(where: string, kind: 'duration' | 'timestamp', rules: Rules, prefix: string): CompiledField {
  noteUnknownKeys(where, prefix, rules, ['message', kind]);
  const r = rules[kind] ?? {};
  noteUnknownKeys(where, `${prefix}${kind}.`, r, ['required', 'const', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in']);
  const { required, ...comparisons } = r;
  const show = kind === 'duration' ? showDuration : (n: bigint) => new Date(Number(n / 1_000_000n)).toISOString();
  const compiled = fromTests(rangeTests(`${prefix}${kind}`, comparisons, toNanos, show), undefined);
  const whenAbsent = required === true ? [{ rule: `${prefix}${kind}.required`, message: 'is required' }] : [];
  return { check: compiled.check, whenAbsent };
}

/** `{seconds, nanos}` (seconds as number, string or Long), or protobuf JSON's "1.5s". */
function toNanos(v: unknown): bigint | undefined {
  if (typeof v === 'string') {
    const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
    if (!m) return undefined;
    const nanos = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0'));
    return m[1] ? -nanos : nanos;
  }
  if (!isObj(v)) return undefined;
  const seconds = v.seconds === undefined || v.seconds === null ? 0n : toBigInt(v.seconds);
  const nanos = v.nanos === undefined || v.nanos === null ? 0n : toBigInt(v.nanos);
  return seconds === undefined || nanos === undefined ? undefined : seconds * 1_000_000_000n + nanos;
}

function showDuration(nanos: bigint): string {
  const sign = nanos < 0n ? '-' : '';
  const abs = nanos < 0n ? -nanos : nanos;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / 1_000_000_000n}${fraction ? `.${fraction}` : ''}s`;
}

// ---------------------------------------------------------------------------------
// Strings and bytes

// PGV's well-known regexes, as Envoy's generated validators compile them. In the
// strict header-name class, `+-.` is a range and so admits `,` as well: kept, because
// it is what Envoy accepts. `strict: false` only forbids what would split a header.
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
// eslint-disable-next-line no-control-regex -- control characters are what these forbid
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
// eslint-disable-next-line no-control-regex -- as above
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;

const STRING_KEYS = [
  'const', 'len', 'min_len', 'max_len', 'len_bytes', 'min_bytes', 'max_bytes', 'pattern', 'prefix', 'suffix',
  'contains', 'not_contains', 'in', 'not_in', 'well_known_regex', 'strict', 'ignore_empty',
];

function stringTests(where: string, rule: string, r: Obj): Test[] {
  noteUnknownKeys(where, `${rule}.`, r, STRING_KEYS);
  const tests: Test[] = [];
  const add = (key: string, ok: (s: string) => boolean, message: (s: string) => string): void => {
    tests.push((v) => (typeof v !== 'string' || ok(v) ? undefined : { rule: `${rule}.${key}`, message: message(v) }));
  };
  const n = (key: string): number | undefined => (r[key] === undefined ? undefined : num(r[key]));
  const str = (key: string): string | undefined => (typeof r[key] === 'string' ? r[key] : undefined);

  const constant = str('const');
  if (constant !== undefined) add('const', (s) => s === constant, () => `must equal ${JSON.stringify(constant)}`);
  const len = n('len');
  if (len !== undefined) add('len', (s) => runes(s) === len, () => `must be exactly ${plural(len, 'character')}`);
  const minLen = n('min_len');
  if (minLen) add('min_len', (s) => s.length >= minLen && runes(s) >= minLen, () => `must be at least ${plural(minLen, 'character')}`);
  const maxLen = n('max_len');
  if (maxLen !== undefined) add('max_len', (s) => runes(s) <= maxLen, () => `must be at most ${plural(maxLen, 'character')}`);
  const lenBytes = n('len_bytes');
  if (lenBytes !== undefined) add('len_bytes', (s) => Buffer.byteLength(s) === lenBytes, () => `must be exactly ${plural(lenBytes, 'byte')}`);
  const minBytes = n('min_bytes');
  if (minBytes) add('min_bytes', (s) => Buffer.byteLength(s) >= minBytes, () => `must be at least ${plural(minBytes, 'byte')}`);
  const maxBytes = n('max_bytes');
  if (maxBytes !== undefined) add('max_bytes', (s) => s.length <= maxBytes / 3 || Buffer.byteLength(s) <= maxBytes, (s) => `must be at most ${plural(maxBytes, 'byte')} (has ${Buffer.byteLength(s)})`);
  const pattern = str('pattern');
  const regex = pattern === undefined ? undefined : jsRegExp(pattern);
  if (pattern !== undefined && !regex) unsupported.add(`${where}: ${rule}.pattern ${pattern} (not JavaScript-compatible)`);
  if (regex) add('pattern', (s) => regex.test(s), () => `must match the pattern ${pattern}`);
  const prefix = str('prefix');
  if (prefix !== undefined) add('prefix', (s) => s.startsWith(prefix), () => `must start with ${JSON.stringify(prefix)}`);
  const suffix = str('suffix');
  if (suffix !== undefined) add('suffix', (s) => s.endsWith(suffix), () => `must end with ${JSON.stringify(suffix)}`);
  const contains = str('contains');
  if (contains !== undefined) add('contains', (s) => s.includes(contains), () => `must contain ${JSON.stringify(contains)}`);
  const notContains = str('not_contains');
  if (notContains !== undefined) add('not_contains', (s) => !s.includes(notContains), () => `must not contain ${JSON.stringify(notContains)}`);
  const allowed = list(r.in).map(String);
  if (allowed.length > 0) add('in', (s) => allowed.includes(s), (s) => `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (got ${JSON.stringify(s)})`);
  const denied = list(r.not_in).map(String);
  if (denied.length > 0) add('not_in', (s) => !denied.includes(s), (s) => `must not be ${JSON.stringify(s)}`);
  const known = r.well_known_regex;
  if (known === 'HTTP_HEADER_NAME' || known === 'HTTP_HEADER_VALUE') {
    const loose = r.strict === false;
    const re = loose ? HEADER_LOOSE : known === 'HTTP_HEADER_NAME' ? HEADER_NAME : HEADER_VALUE;
    const what = known === 'HTTP_HEADER_NAME' ? 'HTTP header name' : 'HTTP header value';
    const detail = loose ? ' (no NUL, CR or LF)' : known === 'HTTP_HEADER_NAME' ? ' (RFC 7230 token characters)' : ' (no control characters)';
    add('well_known_regex', (s) => re.test(s), () => `must be a valid ${what}${detail}`);
  } else if (known !== undefined && known !== 'UNKNOWN' && known !== 0) {
    unsupported.add(`${where}: ${rule}.well_known_regex ${JSON.stringify(known)}`);
  }
  for (const format of ['email', 'hostname', 'ip', 'ipv4', 'ipv6', 'uri', 'uri_ref', 'address', 'uuid']) {
    if (r[format] === true) unsupported.add(`${where}: ${rule}.${format}`);
  }
  return r.ignore_empty === true ? tests.map((t) => (v) => (v === '' ? undefined : t(v))) : tests;
}

function bytesTests(where: string, rule: string, r: Obj): Test[] {
  noteUnknownKeys(where, `${rule}.`, r, ['len', 'min_len', 'max_len', 'ignore_empty']);
  const tests: Test[] = [];
  // protobufjs takes bytes as a Uint8Array or a base64 string.
  const size = (v: unknown): number | undefined => (v instanceof Uint8Array ? v.length : typeof v === 'string' ? Buffer.from(v, 'base64').length : undefined);
  const add = (key: string, ok: (n: number) => boolean, message: string): void => {
    tests.push((v) => {
      const n = size(v);
      return n === undefined || ok(n) || (n === 0 && r.ignore_empty === true) ? undefined : { rule: `${rule}.${key}`, message };
    });
  };
  if (r.len !== undefined) add('len', (n) => n === num(r.len), `must be exactly ${plural(num(r.len), 'byte')}`);
  if (num(r.min_len) > 0) add('min_len', (n) => n >= num(r.min_len), `must be at least ${plural(num(r.min_len), 'byte')}`);
  if (r.max_len !== undefined) add('max_len', (n) => n <= num(r.max_len), `must be at most ${plural(num(r.max_len), 'byte')}`);
  return tests;
}

/**
 * A PGV pattern (RE2 syntax) as a JavaScript RegExp, when the two agree. Unicode mode
 * refuses most of RE2's own syntax (`\A`, `\z`, `(?i)`, `(?P<n>`); POSIX classes are
 * refused here because JavaScript would read `[[:alpha:]]` as something else.
 */
function jsRegExp(pattern: string): RegExp | undefined {
  if (pattern.includes('[[:') || /\(\?[^:]/.test(pattern)) return undefined;
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return undefined;
  }
}

/** Characters as PGV counts them: code points, not UTF-16 units. */
function runes(s: string): number {
  let count = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++;
    count++;
  }
  return count;
}

// ---------------------------------------------------------------------------------

function num(v: unknown): number {
  const n = toNumber(v);
  return n === undefined ? (v === undefined ? 0 : NaN) : n;
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

function uniqueKey(v: unknown): unknown {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
}
