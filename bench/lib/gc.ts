// A full collection between runs (the runner starts benchmarks with --expose-gc), so one
// run's garbage is not collected on the next run's clock. Without the flag: a no-op.

export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}
