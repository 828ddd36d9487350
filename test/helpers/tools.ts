// Finds the real Envoy and Consul binaries the integration tests drive.
// Order: ENVOY_BIN / CONSUL_BIN when set, else <repo>/.tools/bin/<tool> (made by
// `npm run tools`). A missing binary skips the suite locally but fails it under CI,
// so a broken CI image can never pass by silently skipping every end-to-end test.
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Tool = 'envoy' | 'consul';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const envVar: Record<Tool, string> = { envoy: 'ENVOY_BIN', consul: 'CONSUL_BIN' };

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function candidate(tool: Tool): { path: string; origin: string } {
  const fromEnv = process.env[envVar[tool]];
  if (fromEnv) return { path: fromEnv, origin: envVar[tool] };
  return { path: `${repoRoot}.tools/bin/${tool}`, origin: '.tools/bin' };
}

function missingMessage(tool: Tool): string {
  const { path, origin } = candidate(tool);
  return `${tool} binary not found or not executable at ${path} (from ${origin}); run \`npm run tools\` or set ${envVar[tool]}`;
}

/** The binary's path, or undefined when it is not installed. */
export function findBinary(tool: Tool): string | undefined {
  const { path } = candidate(tool);
  return isExecutable(path) ? path : undefined;
}

/** The binary's path; throws with the install hint when it is missing. */
export function requireBinary(tool: Tool): string {
  const path = findBinary(tool);
  if (!path) throw new Error(missingMessage(tool));
  return path;
}

/**
 * For `describe.skipIf(!hasBinary('envoy'))`: true when installed. When missing it
 * throws under CI=true (the test file fails) and otherwise warns with the reason.
 */
export function hasBinary(tool: Tool): boolean {
  if (findBinary(tool)) return true;
  if (process.env.CI === 'true') throw new Error(missingMessage(tool));
  console.warn(`skipping: ${missingMessage(tool)}`);
  return false;
}
