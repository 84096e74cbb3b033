/**
 * The memsnap version, written into every manifest's `tools`.
 *
 * @module
 */

/** The memsnap version. */
export const MEMSNAP_VERSION = "0.1.0";
