/**
 * Waits for an asynchronous handler within its time limit, without paying for a timer when the
 * handler settles within a few microtasks. Private to `hooks/`.
 *
 * @module
 */

/** How an asynchronous handler ended. */
export type Outcome =
  | { readonly kind: "ok" }
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "timeout" }
  | { readonly kind: "aborted" };

const OK: Outcome = Object.freeze({ kind: "ok" });
const TIMEOUT: Outcome = Object.freeze({ kind: "timeout" });
const ABORTED: Outcome = Object.freeze({ kind: "aborted" });

/**
 * Microtasks to wait before arming a timer. A handler that only awaits already-settled work
 * finishes within them; one doing real I/O takes a macrotask, where a timer costs nothing
 * noticeable. (A timer costs microseconds in Deno; a microtask tens of nanoseconds.)
 */
const SPINS = 16;

/** setTimeout's largest delay. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Waits for `pending` to settle, or for `limitAt` to pass, or for `cancel` to abort.
 * On timeout or cancellation, aborts `controller` (the handler's signal) and stops waiting;
 * a late settlement of `pending` is swallowed (never an unhandled rejection).
 *
 * @param pending What the handler returned.
 * @param controller Controls the signal the handler received.
 * @param limitAt Epoch milliseconds at which the handler times out.
 * @param cancel The emit's cancellation signal, if any.
 * @returns The outcome.
 */
export function settle(
  pending: PromiseLike<unknown>,
  controller: AbortController,
  limitAt: number,
  cancel: AbortSignal | undefined,
): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      if (onAbort !== undefined) cancel?.removeEventListener("abort", onAbort);
      resolve(outcome);
    };
    Promise.resolve(pending).then(
      () => finish(OK),
      (error: unknown) => finish({ kind: "error", error }),
    );
    let spins = 0;
    const spin = (): void => {
      if (done) return;
      if (++spins < SPINS) {
        queueMicrotask(spin);
        return;
      }
      const delay = Math.min(Math.max(0, limitAt - Date.now()), MAX_DELAY);
      timer = setTimeout(() => {
        timer = undefined;
        controller.abort(new DOMException("The hook handler timed out", "TimeoutError"));
        finish(TIMEOUT);
      }, delay);
      if (cancel !== undefined) {
        onAbort = (): void => {
          controller.abort(cancel.reason);
          finish(ABORTED);
        };
        if (cancel.aborted) onAbort();
        else cancel.addEventListener("abort", onAbort, { once: true });
      }
    };
    queueMicrotask(spin);
  });
}
