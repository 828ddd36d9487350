// YAML with positions: parse a document and say where any path inside it starts, so
// every error can name `file:line:column`.
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node as YamlNode } from 'yaml';

export interface PositionedYaml {
  value: unknown;
  /** `file:line:col` of the deepest node on `path` that exists. */
  locate: (path: readonly PropertyKey[]) => string;
}

export class YamlSyntaxError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'YamlSyntaxError';
  }
}

export function parseYaml(file: string, text: string): PositionedYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new YamlSyntaxError(
      doc.errors.map((e) => {
        const at = lines.linePos(e.pos[0]);
        return `${file}:${at.line}:${at.col}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const where = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const at = lines.linePos(offset);
    return `${file}:${at.line}:${at.col}`;
  };
  return {
    value: doc.toJS(),
    locate: (path) => {
      let node: unknown = doc.contents;
      let offset = (doc.contents as YamlNode | null)?.range?.[0];
      for (const key of path) {
        if (isMap(node)) {
          const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key));
          if (!pair) break;
          offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
          node = pair.value;
        } else if (isSeq(node) && typeof key === 'number' && node.items[key] !== undefined) {
          node = node.items[key];
          offset = (node as YamlNode).range?.[0] ?? offset;
        } else {
          break;
        }
      }
      return where(offset);
    },
  };
}
