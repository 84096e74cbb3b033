// Private: the regex of the secrets pack's generic-secret rule (a module of its own so the test
// can compare it with and without its prefilter; the pack module's exports are public).

/** Case-insensitive spelling of a word without the `i` flag (`key` → `[kK][eE][yY]`). */
const ci = (w: string): string => w.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
/** The rest of a name after its keyword (`_prod`, `Value`, `s`), then an assignment operator. */
const ASSIGN_NAME_TAIL = String
  .raw`(?:[_.-][\w.-]{0,24}|[A-Z][\w.-]{0,24}|[sS])?["']?(?:[ \t]+(?:is|was))?[ \t]*`;
const VALUE = String
  .raw`([^\s"'\x60,;<>(){}\[\]=][^\s"'\x60,;<>(){}\[\]]{4,198}[^\s"'\x60,;<>(){}\[\].:])`;

const OP = "(?::=|=>|=|:)";
const PASS_NAME = `${ci("pass")}(?:${ci("word")}|${ci("wd")}|${ci("phrase")})?|${ci("pwd")}`;
const SECRET_NAME = `${ci("secret")}|${ci("token")}|(?:${ci("api")}|${ci("access")}|${
  ci("private")
}|${ci("auth")})[_.-]?${ci("key")}|${ci("credential")}`;
/**
 * A necessary condition of what follows the operator (a {@linkcode VALUE} has a first character
 * and at least 5 more): checked before the lookbehind, it rejects most operators in prose
 * (`note: see`, `at: 10am`) without the name's backtracking. No group: matches are unchanged.
 */
const VALUE_AHEAD = String
  .raw`(?=[ \t]*["'\x60]?[^\s"'\x60,;<>(){}\[\]=][^\s"'\x60,;<>(){}\[\]]{5})`;
/**
 * The generic assignment regex (global). It starts at the operator (a rare character V8 scans
 * fast), then looks behind for the name: group 1 is set for password-like names, group 2 is the
 * value. `prefilter: false` leaves out {@linkcode VALUE_AHEAD} (for tests: same matches).
 */
export function genericAssignmentRegex(prefilter = true): RegExp {
  return new RegExp(
    `[:=>]${
      prefilter ? VALUE_AHEAD : ""
    }(?<=(?:(${PASS_NAME})|${SECRET_NAME})${ASSIGN_NAME_TAIL}${OP})[ \\t]*["'\\x60]?${VALUE}`,
    "g",
  );
}
