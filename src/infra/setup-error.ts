// A start-up problem the operator fixes on the machine (a folder PostgreSQL cannot reach, ...).
// The CLI prints its message, one line that says what to do, and exits 2: no stack trace.
export class SetupError extends Error {
  override readonly name = 'SetupError';
}
