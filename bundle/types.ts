/**
 * Types of bundle format v1: the manifest and what goes into a bundle.
 *
 * @module
 */

/** Any JSON value. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The format id written in every manifest. */
export const FORMAT_ID = "memsnap-bundle";
/** The manifest version this code writes and the newest it reads. */
export const MANIFEST_VERSION = 1;

/**
 * Kind of an artifact: `"file"` (memory-dir file), `"symlink"` (memory-dir symlink, content is
 * the link target), `"git-bundle"`, `"sqlite"`, `"state"`, or a custom plugin's kind.
 */
export type ArtifactKind =
  | "file"
  | "symlink"
  | "git-bundle"
  | "sqlite"
  | "state"
  | (string & Record<never, never>);

/** One artifact recorded in the manifest (hash and size of the post-redaction bytes). */
export interface ManifestArtifact {
  /** Path inside the payload, e.g. `memdir/notes/a.md`, `sqlite/long_term.sqlite`. */
  path: string;
  /** Artifact kind. */
  kind: ArtifactKind;
  /** Size in bytes. */
  size: number;
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string;
  /** Unix mode bits (e.g. `0o755` for executables) when not `0o644`. */
  mode?: number;
}

/** The payload entry recorded in the manifest. */
export interface ManifestPayload {
  /** `payload.tar.zst` or `payload.tar.zst.age`. */
  path: string;
  /** Size in bytes of the payload entry as stored. */
  size: number;
  /** SHA-256 of the payload entry as stored (ciphertext when encrypted). */
  sha256: string;
  /** Always `"zstd"` in v1. */
  compression: "zstd";
  /** Encryption, or `null` for a plaintext payload. */
  encryption: PayloadEncryption | null;
}

/** How the payload is encrypted. */
export interface PayloadEncryption {
  /** Always `"age"` in v1. */
  scheme: "age";
  /** Fingerprints of the recipients: first 16 hex of SHA-256 of each `age1...` string. */
  recipients: string[];
}

/** The redaction report stored in the manifest. Never contains a secret. */
export interface RedactionReport {
  /** Whether redaction ran for this bundle. */
  redacted: boolean;
  /** Packs applied, with their versions. */
  packs: { id: string; version: string }[];
  /** Per rule: matches replaced, and artifacts touched (sorted). */
  rules: { id: string; count: number; artifacts: string[] }[];
  /** Artifacts skipped because binary (sorted). */
  skipped_binary: string[];
}

/** The manifest, `manifest.json`, written as canonical JSON. */
export interface Manifest {
  /** Always {@linkcode FORMAT_ID}. */
  format: typeof FORMAT_ID;
  /** Manifest version, {@linkcode MANIFEST_VERSION}. */
  manifest_version: number;
  /** Sortable snapshot id, e.g. `20261125T195222123Z-1a2b3c4d`. */
  snapshot_id: string;
  /** The agent this memory belongs to. */
  agent_id: string;
  /** The tenant (namespace) of the agent; `"default"` if none. */
  tenant: string;
  /** Free label, or `null`. */
  label: string | null;
  /** ISO 8601 UTC timestamp with milliseconds. */
  created_at: string;
  /** What took the snapshot: `"cli"`, `"api"`, `"pre-dream"`, `"pre-restore"`, `"shutdown"`, ... */
  created_by: string;
  /** The previous snapshot of this agent, or `null`. */
  parent: string | null;
  /** Every artifact, sorted by path. */
  artifacts: ManifestArtifact[];
  /** The payload entry. */
  payload: ManifestPayload;
  /** Per capture plugin, metadata it recorded (git HEAD, sqlite user_version, ...). */
  captures: Record<string, JsonValue>;
  /** The redaction report. */
  redaction: RedactionReport;
  /** Versions of the tools that wrote the bundle. */
  tools: Record<string, string>;
}

/**
 * What the caller of `writeBundle()` supplies: the manifest's descriptive fields. The writer
 * adds `format`, `manifest_version`, `artifacts` and `payload`.
 */
export type BundleHeader = Omit<Manifest, "format" | "manifest_version" | "artifacts" | "payload">;
