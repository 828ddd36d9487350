// google.protobuf.Struct, Value and ListValue as plain JSON, the way Envoy's YAML and
// config dumps write them (`json_format: {status: "%RESPONSE_CODE%"}`, node metadata).
// protobufjs applies a wrapper's converters wherever the type appears, as it does for
// Any's `@type`; registered before the protos load. Each wrapper converts one level and
// leaves the level below to the wrapper of its type.
import protobuf from 'protobufjs';

type Plain = Record<string, unknown>;
interface Converter {
  fromObject(this: protobuf.Type, object: Plain): protobuf.Message;
  toObject(this: protobuf.Type, message: protobuf.Message, options?: protobuf.IConversionOptions): Plain;
}

const shallow = (options?: protobuf.IConversionOptions): protobuf.IConversionOptions => ({ ...options, defaults: false, oneofs: false });

const VALUE_KEYS = ['nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'];

/**
 * One JSON value in Value's message shape, one level deep: protobufjs only hands
 * objects to a nested type's converter, so scalars are wrapped here, and objects and
 * arrays go on as plain JSON to the Struct and ListValue wrappers.
 */
function shapeValue(value: unknown): Plain {
  if (value === null || value === undefined) return { nullValue: 0 };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: value };
  return { structValue: value };
}

const isShaped = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 && VALUE_KEYS.includes(Object.keys(value)[0]!);

let registered = false;

export function registerJsonWrappers(): void {
  if (registered) return;
  registered = true;
  const wrappers = protobuf.wrappers as Record<string, Converter>;
  // Inside a converter, `this` is the type with its original converters.
  wrappers['.google.protobuf.Struct'] = {
    fromObject(object) {
      return this.fromObject({ fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, shapeValue(v)])) });
    },
    toObject(message, options) {
      return (this.toObject(message, shallow(options)) as { fields?: Plain }).fields ?? {};
    },
  };
  wrappers['.google.protobuf.Value'] = {
    fromObject(value: unknown) {
      return this.fromObject(isShaped(value) ? (value as Plain) : shapeValue(value));
    },
    toObject(message, options) {
      const v = this.toObject(message, shallow(options));
      for (const key of VALUE_KEYS.slice(1)) {
        if (v[key] !== undefined && v[key] !== null) return v[key] as Plain;
      }
      return null as unknown as Plain;
    },
  };
  wrappers['.google.protobuf.ListValue'] = {
    fromObject(values: unknown) {
      return this.fromObject({ values: (values as unknown[]).map(shapeValue) });
    },
    toObject(message, options) {
      return ((this.toObject(message, shallow(options)) as { values?: unknown[] }).values ?? []) as unknown as Plain;
    },
  };
}
