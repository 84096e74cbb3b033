// Copyright memsnap authors. MIT license.
// Private helpers: validation of the names that become path segments or object keys.
import { UsageError } from "../errors.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,127}$/;

/**
 * Checks that a tenant, agent id or snapshot id is safe as one path segment and one object
 * key segment: starts with a letter or digit, then letters, digits, `._@+=-`, at most 128.
 */
export function checkName(kind: "tenant" | "agent id" | "snapshot id", value: string): string {
  if (typeof value !== "string" || !NAME.test(value) || value.includes("..")) {
    throw new UsageError(
      `Cannot use ${kind} ${JSON.stringify(value)}: it must start with a letter or digit and ` +
        `contain only letters, digits and ._@+=- (at most 128 characters)`,
    );
  }
  return value;
}

/** Whether the value is a valid name (see {@linkcode checkName}). */
export function isName(value: string): boolean {
  return NAME.test(value) && !value.includes("..");
}

/** A short random hex string. */
export function randomHex(bytes = 6): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Describes an agent for messages: `agent a1` or `agent a1 (tenant t)`. */
export function describeAgent(tenant: string, agentId: string): string {
  return tenant === "default" ? `agent ${agentId}` : `agent ${agentId} (tenant ${tenant})`;
}
