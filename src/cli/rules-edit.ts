// Edits of rule documents that keep their comments and layout: the everyday moves the
// CLI's shorthands make (`mirror set`, `route dev`), as pure functions over YAML text.
import { isMap, isSeq, parseDocument, type Document, type YAMLSeq } from 'yaml';

function load(text: string): Document {
  const doc: Document = parseDocument(text.trim() === '' ? '{}\n' : text);
  if (doc.errors.length > 0) throw new Error(`the stored document is not valid YAML: ${doc.errors[0]!.message}`);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({});
  return doc;
}

/** The list at services.<service>.<key>, created if missing. */
function listOf(doc: Document, service: string, key: string): YAMLSeq {
  const path = ['services', service, key];
  if (!doc.hasIn(path)) doc.setIn(path, doc.createNode([]));
  const list = doc.getIn(path, true);
  if (!isSeq(list)) throw new Error(`services.${service}.${key} is not a list`);
  return list;
}

/** Replaces the item whose `field` equals `value`, or appends `item`. */
function upsert(doc: Document, list: YAMLSeq, field: string, value: string, item: Record<string, unknown>): void {
  const index = list.items.findIndex((i) => isMap(i) && i.get(field) === value);
  const node = doc.createNode(item);
  if (index === -1) list.items.push(node);
  else list.items[index] = node;
}

/** The document that holds `services.<service>`, if any. */
export function documentWithService(documents: readonly { name: string; text: string }[], service: string): string | undefined {
  return documents.find((d) => {
    try {
      return load(d.text).hasIn(['services', service]);
    } catch {
      return false;
    }
  })?.name;
}

export interface MirrorEdit {
  name: string;
  to: string;
  percent: number;
  methods?: string[];
}

export function setMirror(text: string, service: string, mirror: MirrorEdit): string {
  const doc = load(text);
  const item: Record<string, unknown> = { name: mirror.name, to: mirror.to, percent: mirror.percent };
  if (mirror.methods) item.methods = mirror.methods;
  upsert(doc, listOf(doc, service, 'mirrors'), 'name', mirror.name, item);
  return doc.toString();
}

export interface DevRouteEdit {
  key: string;
  to: string;
  owner: string;
  expires: Date;
}

export function setDevRoute(text: string, service: string, route: DevRouteEdit): string {
  const doc = load(text);
  upsert(doc, listOf(doc, service, 'dev_routes'), 'key', route.key, {
    key: route.key,
    to: route.to,
    owner: route.owner,
    expires: route.expires.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  return doc.toString();
}

/** `2h`, `90m`, `1h30m`, `45s` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!match || text.trim() === '') throw new Error(`"${text}" is not a duration: use forms like 2h, 90m or 1h30m`);
  const [, h = '0', m = '0', s = '0'] = match;
  const ms = ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
  if (ms <= 0) throw new Error(`"${text}" is not a positive duration`);
  return ms;
}
