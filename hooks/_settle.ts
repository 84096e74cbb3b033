/**
 * Watches an asynchronous handler so the registry can wait for it within a time limit, paying
 * for a timer only when the handler does not settle within a few microtasks. Private to
 * `hooks/`.
 *
 * @module
 */

/** States of a {@linkcode Watch}. */
export const PENDING = 0, OK = 1, FAILED = 2, TIMED_OUT = 3, ABORTED = 4;

/**
 * Microtasks the registry yields before arming a timer. A handler that only awaits
 * already-settled work finishes within them; one doing real I/O takes a macrotask, where a
 * timer costs nothing noticeable. (A timer costs microseconds in Deno; a microtask tens of
 * nanoseconds.)
 */
export const SPINS = 8;

/** setTimeout's largest delay. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * The outcome of what a handler returned. A settlement after a timeout or an abort is
 * swallowed (never an unhandled rejection).
 */
export class Watch {
  /** One of PENDING, OK, FAILED, TIMED_OUT, ABORTED. */
  state: number = PENDING;
  /** What the handler rejected with, when FAILED. */
  error: unknown = undefined;
  #wake: (() => void) | undefined = undefined;

  /**
   * Starts watching.
   *
   * @param pending What the handler returned.
   */
  constructor(pending: PromiseLike<unknown>) {
    Promise.resolve(pending).then(
      () => this.#end(OK),
      (error: unknown) => {
        if (this.state === PENDING) this.error = error;
        this.#end(FAILED);
      },
    );
  }

  #end(state: number): void {
    if (this.state !== PENDING) return;
    this.state = state;
    this.#wake?.();
  }

  /**
   * Waits until the handler settles, `limitAt` passes (TIMED_OUT), or `cancel` aborts
   * (ABORTED). On timeout or abort, aborts `controller`, the handler's signal.
   *
   * @param controller Controls the signal the handler received.
   * @param limitAt Epoch milliseconds at which the handler times out.
   * @param cancel The emit's cancellation signal, if any.
   * @returns A promise resolved once `state` is no longer PENDING.
   */
  wait(
    controller: AbortController,
    limitAt: number,
    cancel: AbortSignal | undefined,
  ): Promise<void> {
    if (this.state !== PENDING) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const delay = Math.min(Math.max(0, limitAt - Date.now()), MAX_DELAY);
      const timer = setTimeout(() => {
        controller.abort(new DOMException("The hook handler timed out", "TimeoutError"));
        this.#end(TIMED_OUT);
      }, delay);
      const onAbort = (): void => {
        controller.abort(cancel!.reason);
        this.#end(ABORTED);
      };
      this.#wake = (): void => {
        clearTimeout(timer);
        cancel?.removeEventListener("abort", onAbort);
        resolve();
      };
      if (cancel !== undefined) {
        if (cancel.aborted) onAbort();
        else cancel.addEventListener("abort", onAbort, { once: true });
      }
    });
  }
}
