// Reading a V8 heap snapshot (.heapsnapshot, as v8.writeHeapSnapshot writes it) to say
// what grows per stream: self sizes by constructor, who retains them, and the size
// each kind of object retains (its dominator subtree), as DevTools computes them.
//
// A snapshot of a server with a 10,000-service snapshot runs to hundreds of MB of
// JSON, past what JSON.parse takes as one string, so the arrays are read straight
// from the bytes into typed arrays, and only the strings go through JSON.parse.
import { readFileSync } from 'node:fs';

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

export class HeapSnapshot {
  readonly nodeCount: number;
  /** Per node: its type's index, name (string index), self size, first edge. */
  readonly type: Uint8Array;
  readonly name: Uint32Array;
  readonly selfSize: Float64Array;
  /** Stable across the snapshots of one process: tells new objects from old. */
  readonly id: Float64Array;
  readonly firstEdge: Uint32Array;
  readonly edgeType: Uint8Array;
  readonly edgeName: Uint32Array;
  /** Per edge: the node it points to (a node number, not an offset). */
  readonly edgeTo: Uint32Array;
  readonly nodeTypes: string[];
  readonly edgeTypes: string[];
  readonly strings: string[];

  constructor(file: string) {
    const bytes = readFileSync(file);
    const nodesAt = bytes.indexOf('"nodes":[');
    const meta = (JSON.parse(`${bytes.subarray(0, nodesAt).toString('utf8').replace(/,\s*$/, '')}}`) as { snapshot: { meta: Meta } }).snapshot.meta;
    const nodes = readNumbers(bytes, nodesAt + '"nodes":['.length);
    const edgesAt = bytes.indexOf('"edges":[', nodes.end);
    const edges = readNumbers(bytes, edgesAt + '"edges":['.length);
    this.strings = readStrings(bytes, bytes.indexOf('"strings":[', edges.end) + '"strings":['.length);

    const nf = meta.node_fields.length;
    const ef = meta.edge_fields.length;
    const field = (fields: string[], name: string): number => {
      const i = fields.indexOf(name);
      if (i < 0) throw new Error(`heap snapshot without the field ${name}`);
      return i;
    };
    const [nType, nName, nId, nSize, nEdges] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((f) => field(meta.node_fields, f)) as [number, number, number, number, number];
    const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => field(meta.edge_fields, f)) as [number, number, number];
    this.nodeTypes = meta.node_types[0];
    this.edgeTypes = meta.edge_types[0];
    this.nodeCount = nodes.values.length / nf;
    const edgeCount = edges.values.length / ef;
    this.type = new Uint8Array(this.nodeCount);
    this.name = new Uint32Array(this.nodeCount);
    this.selfSize = new Float64Array(this.nodeCount);
    this.id = new Float64Array(this.nodeCount);
    this.firstEdge = new Uint32Array(this.nodeCount + 1);
    let edge = 0;
    for (let n = 0; n < this.nodeCount; n++) {
      const o = n * nf;
      this.type[n] = nodes.values[o + nType]!;
      this.name[n] = nodes.values[o + nName]!;
      this.selfSize[n] = nodes.values[o + nSize]!;
      this.id[n] = nodes.values[o + nId]!;
      this.firstEdge[n] = edge;
      edge += nodes.values[o + nEdges]!;
    }
    this.firstEdge[this.nodeCount] = edge;
    this.edgeType = new Uint8Array(edgeCount);
    this.edgeName = new Uint32Array(edgeCount);
    this.edgeTo = new Uint32Array(edgeCount);
    for (let e = 0; e < edgeCount; e++) {
      this.edgeType[e] = edges.values[e * ef + eType]!;
      this.edgeName[e] = edges.values[e * ef + eName]!;
      this.edgeTo[e] = edges.values[e * ef + eTo]! / nf;
    }
  }

  /** What a node is, for grouping: a constructor's or native class's name, or the kind of value. */
  category(n: number): string {
    const type = this.nodeTypes[this.type[n]!]!;
    const name = this.strings[this.name[n]!] ?? '';
    switch (type) {
      case 'string':
      case 'concatenated string':
      case 'sliced string':
        return '(string)';
      case 'number':
      case 'heap number':
        return '(number)';
      case 'code':
        return '(compiled code)';
      case 'hidden':
      case 'array':
      case 'synthetic':
      case 'object shape':
        return `(${type}) ${name.replace(/\d+/g, 'N')}`;
      case 'closure':
        return `(closure) ${name || 'anonymous'}`;
      default:
        return type === 'object' ? name : `(${type}) ${name}`;
    }
  }

  edgeLabel(e: number): string {
    const t = this.edgeTypes[this.edgeType[e]!]!;
    return t === 'element' || t === 'hidden' ? `[${t}]` : (this.strings[this.edgeName[e]!] ?? '?');
  }

  isWeak(e: number): boolean {
    return this.edgeTypes[this.edgeType[e]!] === 'weak';
  }

  /** Count and self size per category. */
  byCategory(): Map<string, { count: number; self: number }> {
    const out = new Map<string, { count: number; self: number }>();
    for (let n = 0; n < this.nodeCount; n++) {
      const c = this.category(n);
      const entry = out.get(c) ?? { count: 0, self: 0 };
      entry.count++;
      entry.self += this.selfSize[n]!;
      out.set(c, entry);
    }
    return out;
  }

  /**
   * Each node's retained size: its own plus that of every node it dominates (every
   * path from the root to them passes through it). Weak edges do not retain.
   * Cooper, Harvey and Kennedy's iterative algorithm over a reverse post-order.
   */
  retainedSizes(): Float64Array {
    const n = this.nodeCount;
    const order = new Uint32Array(n); // post-order number → node
    const post = new Int32Array(n).fill(-1); // node → post-order number
    // Iterative DFS from the root (node 0).
    const stack = new Uint32Array(n);
    const next = new Uint32Array(n);
    const seen = new Uint8Array(n);
    let sp = 0;
    let count = 0;
    stack[sp++] = 0;
    seen[0] = 1;
    next[0] = this.firstEdge[0]!;
    while (sp > 0) {
      const v = stack[sp - 1]!;
      let pushed = false;
      while (next[v]! < this.firstEdge[v + 1]!) {
        const e = next[v]!++;
        if (this.isWeak(e)) continue;
        const w = this.edgeTo[e]!;
        if (seen[w]) continue;
        seen[w] = 1;
        next[w] = this.firstEdge[w]!;
        stack[sp++] = w;
        pushed = true;
        break;
      }
      if (!pushed) {
        sp--;
        post[v] = count;
        order[count++] = v;
      }
    }
    // Predecessors of reachable nodes, by post-order number.
    const predCount = new Uint32Array(count + 1);
    for (let v = 0; v < n; v++) {
      if (post[v]! < 0) continue;
      for (let e = this.firstEdge[v]!; e < this.firstEdge[v + 1]!; e++) {
        if (!this.isWeak(e) && post[this.edgeTo[e]!]! >= 0) predCount[post[this.edgeTo[e]!]! + 1]!++;
      }
    }
    for (let i = 0; i < count; i++) predCount[i + 1]! += predCount[i]!;
    const preds = new Uint32Array(predCount[count]!);
    const fill = predCount.slice(0, count);
    for (let v = 0; v < n; v++) {
      if (post[v]! < 0) continue;
      for (let e = this.firstEdge[v]!; e < this.firstEdge[v + 1]!; e++) {
        const w = this.edgeTo[e]!;
        if (!this.isWeak(e) && post[w]! >= 0) preds[fill[post[w]!]!++] = post[v]!;
      }
    }
    const root = count - 1; // the root finishes last
    const idom = new Int32Array(count).fill(-1);
    idom[root] = root;
    const intersect = (a: number, b: number): number => {
      while (a !== b) {
        while (a < b) a = idom[a]!;
        while (b < a) b = idom[b]!;
      }
      return a;
    };
    for (let changed = true; changed; ) {
      changed = false;
      for (let b = root - 1; b >= 0; b--) {
        let dom = -1;
        for (let i = predCount[b]!; i < predCount[b + 1]!; i++) {
          const p = preds[i]!;
          if (idom[p] === -1) continue;
          dom = dom === -1 ? p : intersect(p, dom);
        }
        if (dom !== -1 && idom[b] !== dom) {
          idom[b] = dom;
          changed = true;
        }
      }
    }
    const retained = new Float64Array(n);
    const byPost = new Float64Array(count);
    for (let i = 0; i < count; i++) byPost[i] = this.selfSize[order[i]!]!;
    // Children finish before their dominators in post-order: add each to its dominator once.
    for (let i = 0; i < root; i++) if (idom[i]! >= 0) byPost[idom[i]!]! += byPost[i]!;
    for (let i = 0; i < count; i++) retained[order[i]!] = byPost[i]!;
    return retained;
  }

  /** Flags the nodes of this snapshot that `earlier` (of the same process) did not have. */
  newSince(earlier: HeapSnapshot): Uint8Array {
    const old = new Set(earlier.id);
    const flags = new Uint8Array(this.nodeCount);
    for (let n = 0; n < this.nodeCount; n++) if (!old.has(this.id[n]!)) flags[n] = 1;
    return flags;
  }

  /**
   * For nodes of `category` (only those flagged in `among`, if given): self size by
   * the retainer's category and edge name, the largest first.
   */
  retainersOf(category: string, among?: Uint8Array, top = 3): { via: string; self: number; count: number }[] {
    const isTarget = new Uint8Array(this.nodeCount);
    for (let n = 0; n < this.nodeCount; n++) if ((!among || among[n]) && this.category(n) === category) isTarget[n] = 1;
    const via = new Map<string, { self: number; count: number }>();
    for (let v = 0; v < this.nodeCount; v++) {
      for (let e = this.firstEdge[v]!; e < this.firstEdge[v + 1]!; e++) {
        const w = this.edgeTo[e]!;
        if (!isTarget[w] || this.isWeak(e)) continue;
        const key = `${this.category(v)}.${this.edgeLabel(e)}`;
        const entry = via.get(key) ?? { self: 0, count: 0 };
        entry.self += this.selfSize[w]!;
        entry.count++;
        via.set(key, entry);
      }
    }
    return [...via].map(([k, v]) => ({ via: k, ...v })).sort((a, b) => b.self - a.self).slice(0, top);
  }
}

/** The integers of a JSON array from `at` to its closing bracket. */
function readNumbers(bytes: Buffer, at: number): { values: Float64Array; end: number } {
  let values = new Float64Array(1 << 20);
  let length = 0;
  let current = 0;
  let inNumber = false;
  let i = at;
  for (; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c >= 48 && c <= 57) {
      current = current * 10 + (c - 48);
      inNumber = true;
      continue;
    }
    if (inNumber) {
      if (length === values.length) {
        const grown = new Float64Array(values.length * 2);
        grown.set(values);
        values = grown;
      }
      values[length++] = current;
      current = 0;
      inNumber = false;
    }
    if (c === 93) break; // ]
  }
  return { values: values.subarray(0, length), end: i };
}

/** The strings of a JSON array of strings from `at` to its closing bracket. */
function readStrings(bytes: Buffer, at: number): string[] {
  const out: string[] = [];
  let i = at;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c === 93) break; // ]
    if (c !== 34) {
      i++;
      continue;
    }
    let j = i + 1;
    while (bytes[j] !== 34) j += bytes[j] === 92 ? 2 : 1; // skip escapes
    out.push(JSON.parse(bytes.subarray(i, j + 1).toString('utf8')) as string);
    i = j + 1;
  }
  return out;
}
