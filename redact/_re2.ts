// Private: translates RE2 (Go regexp) syntax, as used in gitleaks configs, to a JS RegExp.

/** The translation, or why it failed. */
export type Re2Translation =
  | { ok: true; source: string; flags: string; regexp: RegExp }
  | { ok: false; reason: string };

const POSIX: Record<string, string> = {
  alpha: "A-Za-z",
  alnum: "A-Za-z0-9",
  digit: "0-9",
  upper: "A-Z",
  lower: "a-z",
  xdigit: "0-9A-Fa-f",
  space: "\\t\\n\\v\\f\\r ",
  blank: " \\t",
  word: "\\w",
  punct: "!-\\/:-@\\[-`{-~",
  cntrl: "\\x00-\\x1f\\x7f",
  print: " -~",
  graph: "!-~",
  ascii: "\\x00-\\x7f",
};

/**
 * Translates an RE2 pattern: leading `(?i)`/`(?s)`/`(?m)` become flags, inline flag groups
 * become JS modifiers `(?i:...)`, `(?P<name>` → `(?<name>`, `\z` / `\A` → end/start of input,
 * `[[:alpha:]]` POSIX classes → ranges, `\Q...\E` → escaped literal, `\x{HH}` → `\xHH`.
 * Reports `\p{..}` classes, `(?U)`, `\C`, negated POSIX classes and anything the JS engine
 * refuses.
 */
export function translateRe2(src: string): Re2Translation {
  let i = 0;
  let out = "";
  const globalFlags = new Set<string>();
  // Leading flag groups set global flags.
  for (;;) {
    const m = /^\(\?([imsU]+)\)/.exec(src.slice(i));
    if (m === null) break;
    if (m[1]!.includes("U")) return { ok: false, reason: "ungreedy flag (?U) has no JS form" };
    for (const f of m[1]!) globalFlags.add(f);
    i += m[0].length;
  }
  // Stack of open groups: how many modifier groups we opened inside each (closed with it).
  const stack: number[] = [0];
  let inClass = false;
  let classStart = -1;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\\") {
      const n = src[i + 1];
      if (n === undefined) return { ok: false, reason: "trailing backslash" };
      if (n === "Q") {
        const end = src.indexOf("\\E", i + 2);
        const lit = src.slice(i + 2, end < 0 ? src.length : end);
        out += lit.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
        i = end < 0 ? src.length : end + 2;
        continue;
      }
      if (n === "z" && !inClass) {
        out += "(?![\\s\\S])";
        i += 2;
        continue;
      }
      if (n === "A" && !inClass) {
        out += "(?<![\\s\\S])";
        i += 2;
        continue;
      }
      if (n === "p" || n === "P") {
        return {
          ok: false,
          reason: `Unicode class \\${n}${src.slice(i + 2, i + 8)}… not translated`,
        };
      }
      if (n === "C") return { ok: false, reason: "\\C (any byte) has no JS form" };
      if (n === "x" && src[i + 2] === "{") {
        const end = src.indexOf("}", i + 3);
        const hex = src.slice(i + 3, end);
        const v = parseInt(hex, 16);
        if (end < 0 || !/^[0-9A-Fa-f]+$/.test(hex)) return { ok: false, reason: "bad \\x{...}" };
        if (v > 0xffff) return { ok: false, reason: `\\x{${hex}} is outside the BMP` };
        out += v <= 0xff ? `\\x${hex.padStart(2, "0").slice(-2)}` : `\\u${hex.padStart(4, "0")}`;
        i = end + 1;
        continue;
      }
      out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === "[" && src[i + 1] === ":") {
        const end = src.indexOf(":]", i + 2);
        if (end < 0) return { ok: false, reason: "unterminated POSIX class" };
        const name = src.slice(i + 2, end);
        if (name.startsWith("^")) {
          return { ok: false, reason: `negated POSIX class [:${name}:] not translated` };
        }
        const r = POSIX[name];
        if (r === undefined) return { ok: false, reason: `unknown POSIX class [:${name}:]` };
        out += r;
        i = end + 2;
        continue;
      }
      if (c === "]" && i !== classStart) {
        inClass = false;
        out += c;
        i++;
        continue;
      }
      if (c === "]") {
        out += "\\]";
        i++;
        continue;
      }
      if (c === "[") {
        out += "\\[";
        i++;
        continue;
      }
      out += c;
      i++;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      i++;
      if (src[i] === "^") {
        out += "^";
        i++;
      }
      classStart = i; // a `]` right here is a literal
      continue;
    }
    if (c === "(") {
      const rest = src.slice(i);
      const named = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named !== null) {
        out += `(?<${named[1]}>`;
        i += named[0].length;
        stack.push(0);
        continue;
      }
      const flagGroup = /^\(\?([imsU]*)(?:-([imsU]*))?([:)])/.exec(rest);
      if (flagGroup !== null && rest.startsWith("(?") && !rest.startsWith("(?:")) {
        const on = flagGroup[1] ?? "";
        const off = flagGroup[2] ?? "";
        if ((on + off).includes("U")) {
          return { ok: false, reason: "ungreedy flag (?U) has no JS form" };
        }
        const mods = (on.length > 0 ? on : "") + (off.length > 0 ? `-${off}` : "");
        if (flagGroup[3] === ":") {
          out += mods.length > 0 ? `(?${mods}:` : "(?:";
          stack.push(0);
        } else {
          // (?i) in the middle: applies to the rest of the enclosing group.
          if (mods.length > 0) {
            out += `(?${mods}:`;
            stack[stack.length - 1]!++;
          }
        }
        i += flagGroup[0].length;
        continue;
      }
      out += c;
      i++;
      stack.push(0);
      continue;
    }
    if (c === "|" && stack[stack.length - 1]! > 0) {
      return { ok: false, reason: "inline flags followed by an alternation in the same group" };
    }
    if (c === ")") {
      const pending = stack.pop() ?? 0;
      if (stack.length === 0) return { ok: false, reason: "unbalanced parenthesis" };
      out += ")".repeat(pending) + ")";
      i++;
      continue;
    }
    out += c;
    i++;
  }
  if (inClass) return { ok: false, reason: "unterminated character class" };
  if (stack.length !== 1) return { ok: false, reason: "unbalanced parenthesis" };
  out += ")".repeat(stack[0]!);
  const flags = [...globalFlags].sort().join("");
  try {
    return { ok: true, source: out, flags, regexp: new RegExp(out, flags) };
  } catch (e) {
    return { ok: false, reason: `JS RegExp refused it: ${(e as Error).message}` };
  }
}
