/**
 * The manifest JSON Schema (private). A copy of `docs/manifest.schema.json`; a test keeps the
 * two equal.
 *
 * @module
 */

/** JSON Schema (draft-07) of manifest_version 1. */
export const MANIFEST_SCHEMA: Record<string, unknown> = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "https://jsr.io/@memsnap/core/docs/manifest.schema.json",
  "title": "memsnap bundle manifest (manifest_version 1)",
  "description":
    "manifest.json, the first entry of a memsnap bundle. Unknown top-level fields are allowed (forward compatibility); every typed field is strict.",
  "type": "object",
  "required": [
    "format",
    "manifest_version",
    "snapshot_id",
    "agent_id",
    "tenant",
    "label",
    "created_at",
    "created_by",
    "parent",
    "artifacts",
    "payload",
    "captures",
    "redaction",
    "tools",
  ],
  "additionalProperties": true,
  "properties": {
    "format": {
      "const": "memsnap-bundle",
    },
    "manifest_version": {
      "type": "integer",
      "minimum": 1,
    },
    "snapshot_id": {
      "$ref": "#/definitions/snapshot_id",
    },
    "agent_id": {
      "type": "string",
      "minLength": 1,
      "maxLength": 256,
    },
    "tenant": {
      "type": "string",
      "minLength": 1,
      "maxLength": 256,
    },
    "label": {
      "type": [
        "string",
        "null",
      ],
      "maxLength": 4096,
    },
    "created_at": {
      "type": "string",
      "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
    },
    "created_by": {
      "type": "string",
      "minLength": 1,
      "maxLength": 256,
    },
    "parent": {
      "oneOf": [
        {
          "$ref": "#/definitions/snapshot_id",
        },
        {
          "type": "null",
        },
      ],
    },
    "artifacts": {
      "type": "array",
      "items": {
        "type": "object",
        "required": [
          "path",
          "kind",
          "size",
          "sha256",
        ],
        "additionalProperties": false,
        "properties": {
          "path": {
            "type": "string",
            "minLength": 1,
          },
          "kind": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
          },
          "size": {
            "$ref": "#/definitions/size",
          },
          "sha256": {
            "$ref": "#/definitions/sha256",
          },
          "mode": {
            "type": "integer",
            "minimum": 0,
            "maximum": 511,
          },
        },
      },
    },
    "payload": {
      "type": "object",
      "required": [
        "path",
        "size",
        "sha256",
        "compression",
        "encryption",
      ],
      "additionalProperties": false,
      "properties": {
        "path": {
          "enum": [
            "payload.tar.zst",
            "payload.tar.zst.age",
          ],
        },
        "size": {
          "$ref": "#/definitions/size",
        },
        "sha256": {
          "$ref": "#/definitions/sha256",
        },
        "compression": {
          "const": "zstd",
        },
        "encryption": {
          "oneOf": [
            {
              "type": "null",
            },
            {
              "type": "object",
              "required": [
                "scheme",
                "recipients",
              ],
              "additionalProperties": false,
              "properties": {
                "scheme": {
                  "const": "age",
                },
                "recipients": {
                  "type": "array",
                  "minItems": 1,
                  "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                  },
                },
              },
            },
          ],
        },
      },
    },
    "captures": {
      "type": "object",
    },
    "redaction": {
      "type": "object",
      "required": [
        "redacted",
        "packs",
        "rules",
        "skipped_binary",
      ],
      "additionalProperties": false,
      "properties": {
        "redacted": {
          "type": "boolean",
        },
        "packs": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "id",
              "version",
            ],
            "additionalProperties": false,
            "properties": {
              "id": {
                "type": "string",
              },
              "version": {
                "type": "string",
              },
            },
          },
        },
        "rules": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "id",
              "count",
              "artifacts",
            ],
            "additionalProperties": false,
            "properties": {
              "id": {
                "type": "string",
              },
              "count": {
                "type": "integer",
                "minimum": 0,
              },
              "artifacts": {
                "type": "array",
                "items": {
                  "type": "string",
                },
              },
            },
          },
        },
        "skipped_binary": {
          "type": "array",
          "items": {
            "type": "string",
          },
        },
      },
    },
    "tools": {
      "type": "object",
      "additionalProperties": {
        "type": "string",
      },
    },
  },
  "definitions": {
    "snapshot_id": {
      "type": "string",
      "pattern": "^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}$",
    },
    "sha256": {
      "type": "string",
      "pattern": "^[0-9a-f]{64}$",
    },
    "size": {
      "type": "integer",
      "minimum": 0,
      "maximum": 9007199254740991,
    },
  },
};
