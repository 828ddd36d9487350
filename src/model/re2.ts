// Regexes in rules run in Envoy, and Envoy runs Google's RE2, not JavaScript's
// RegExp. The two disagree: JS accepts lookaround `(?=…)` and backreferences `\1`,
// RE2 refuses them, and Envoy would NACK the whole route configuration. So rules are
// checked with RE2 itself, the WASM build `re2-wasm`.
//
// We call the raw RE2 wrapper, not re2-wasm's `RE2` class: that class rewrites
// JavaScript syntax into RE2 syntax first (`\u0041` → `\x{0041}`, `(?<n>` → `(?P<n>`),
// so it would accept patterns that Envoy receives verbatim and refuses.
//
// Not checked here: Envoy also refuses a regex whose compiled RE2 program is larger
// than the runtime key `re2.max_program_size.error_level` (default 100). re2-wasm does
// not expose the program size; the bootstrap must raise that limit.
import { createRequire } from 'node:module';

interface WrappedRE2 {
  ok(): boolean;
  error(): string;
  delete(): void;
}
type WrappedRE2Constructor = new (pattern: string, ignoreCase: boolean, multiline: boolean, dotAll: boolean) => WrappedRE2;

let constructor: WrappedRE2Constructor | undefined;

/** Loaded on first use: the WASM module costs ~60 ms to instantiate. */
function re2(): WrappedRE2Constructor {
  if (!constructor) {
    const require = createRequire(import.meta.url);
    constructor = (require('re2-wasm/build/wasm/re2.js') as { WrappedRE2: WrappedRE2Constructor }).WrappedRE2;
  }
  return constructor;
}

const CACHE_LIMIT = 1000;
const cache = new Map<string, string | undefined>();

/**
 * RE2's own complaint about `pattern` (e.g. `invalid perl operator: (?=`), or
 * undefined when RE2 compiles it. Results are cached: rules are re-validated on every
 * change and most patterns repeat.
 */
export function re2Error(pattern: string): string | undefined {
  if (cache.has(pattern)) return cache.get(pattern);
  const compiled = new (re2())(pattern, false, false, false);
  // Embind objects live in the WASM heap until deleted; validation runs for the
  // lifetime of the process, so never leak them.
  let error: string | undefined;
  try {
    error = compiled.ok() ? undefined : compiled.error();
  } finally {
    compiled.delete();
  }
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(pattern, error);
  return error;
}
