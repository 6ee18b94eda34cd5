/** Bad input from the browser: answered 400 with its message, and nothing is sent to the cluster. */
export class InputError extends Error {
  override readonly name = "InputError";
}
