/**
 * The built-in `pii` pack: email addresses, payment card numbers and phone numbers.
 *
 * @module
 */
import type { RedactionRule, RulePack } from "../types.ts";
import { luhn } from "../_util.ts";

/** Whether the digits form a card number of a known brand's prefix and length. */
function cardBrandOk(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === "4") return n === 13 || n === 16 || n === 19; // Visa
  if (p2 >= 51 && p2 <= 55) return n === 16; // Mastercard
  if (p4 >= 2221 && p4 <= 2720) return n === 16; // Mastercard 2-series
  if (p2 === 34 || p2 === 37) return n === 15; // American Express
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p2 === 30 && d[2]! <= "5")) {
    return n >= 14 && n <= 19; // Diners Club
  }
  if (d.startsWith("6011") || p2 === 65 || (p4 >= 6440 && p4 <= 6499)) {
    return n >= 16 && n <= 19; // Discover
  }
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  if (/^(?:5018|5020|5038|5893|6304|6759|676[1-3])/.test(d)) return n >= 12 && n <= 19; // Maestro
  return false;
}

/** Groups separated by one kind of separator only (all spaces, or all dashes, or none). */
function cardSeparatorsOk(s: string): boolean {
  const hasSpace = s.includes(" ");
  const hasDash = s.includes("-");
  return !(hasSpace && hasDash);
}

const rules: RedactionRule[] = [
  {
    id: "email",
    description:
      "Email address (reserved example/test domains, git@ remotes and image@2x names left alone)",
    pattern:
      /(?<![A-Za-z0-9._%+/-])(?<!(?<!mailto):)[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/,
    keywords: ["@"],
    allowlist: [
      /@(?:[A-Za-z0-9-]+\.)*(?:example\.(?:com|org|net)|[A-Za-z0-9-]+\.(?:example|test|invalid|localhost))$/i,
      /^git@/,
      /\.(?:png|jpe?g|gif|svg|webp|ico|bmp|tiff?)$/i,
    ],
  },
  {
    id: "payment-card",
    description:
      "Payment card number: 13-19 digits, optional space/dash groups, known brand prefix, Luhn",
    pattern: /[2-6](?<![\d.,/+-][2-6])\d{3}(?:[ -]?\d){8,15}(?![\d]|[.,/-]\d)/,
    validate: (s) => {
      const d = s.replace(/[ -]/g, "");
      return d.length >= 12 && d.length <= 19 && cardSeparatorsOk(s) && cardBrandOk(d) &&
        luhn(d);
    },
  },
  {
    id: "phone-number",
    description:
      "Phone number: E.164 (+CC...), North American (415) 555-0132 / 415-555-0132, national 0xx xxxx xxxx",
    pattern: new RegExp(
      [
        // International: +CC then 7-14 more digits in groups.
        String.raw`\+(?<![\w+]\+)[1-9]\d{0,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w]|[.-]\d)`,
        // North American: (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX.
        String
          .raw`(?:\((?<![\w.+-]\()[2-9]\d{2}\) ?|[2-9](?<![\w.+-][2-9])\d{2}([-.]))[2-9]\d{2}(?:\1|-)\d{4}(?![\w]|[.-]\d)`,
        // National with a trunk 0: 020 7946 0958, 030-1234-5678.
        String.raw`0(?<![\w.+-]0)\d{1,4}([ -])\d{3,4}\2\d{3,4}(?![\w]|[.-]\d)`,
      ].join("|"),
    ),
    validate: (s) => {
      const digits = s.replace(/\D/g, "").length;
      return digits >= 9 && digits <= 15;
    },
  },
];

/**
 * The built-in `pii` pack.
 *
 * | rule | finds |
 * |---|---|
 * | `email` | addresses; `example.com`/`.test`/`.invalid`, `git@host` and `logo@2x.png` left alone |
 * | `payment-card` | 13–19 digits with a known brand prefix and a valid Luhn check digit |
 * | `phone-number` | E.164 and common national formats; dates, versions and ids left alone |
 *
 * @example Redacting an email address
 * ```ts
 * import { createRedactor, piiPack } from "@memsnap/core/redact";
 * const r = createRedactor({ packs: [piiPack], key: new Uint8Array(32) });
 * console.log(r.redactString("write to jane.doe@acme.io", "notes.md"));
 * // write to [REDACTED:email:........]
 * ```
 */
export const piiPack: RulePack = {
  id: "pii",
  version: "1.0.0",
  rules,
};
