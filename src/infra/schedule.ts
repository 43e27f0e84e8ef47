// Minute-resolution schedules for background work (points expiry, claim reconcile): graphile-worker
// crontab syntax, UTC, run in-process by every process that runs workers. A minute missed while
// the process was down or busy is not replayed; a run still going when its schedule fires again
// is not doubled. Each task must be safe to run in several processes at once.
import { parseCronItem } from 'graphile-worker';
import type { Logger } from './logger.ts';

/** Whether a cron schedule fires in the minute that contains `at`. Throws on a malformed schedule. */
export function cronMatcher(schedule: string): (at: Date) => boolean {
  const item = parseCronItem({ task: 'schedule', match: schedule });
  return (at) => item.match({
    min: at.getUTCMinutes(), hour: at.getUTCHours(), date: at.getUTCDate(), month: at.getUTCMonth() + 1, dow: at.getUTCDay(),
  });
}

/**
 * Runs `run` at every minute matching `schedule` (or every `everyMs` when given:
 * STAMPEDE_SCHEDULE_INTERVAL_MS, so tests see a schedule fire in seconds); the returned function
 * stops it after the current run.
 */
export function startCronTask(
  name: string, schedule: string, logger: Logger, run: () => Promise<unknown>, everyMs?: number,
): () => Promise<void> {
  const fires = everyMs === undefined ? cronMatcher(schedule) : () => true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const scheduleNext = () => {
    const delay = everyMs ?? 60_000 - (Date.now() % 60_000);
    timer = setTimeout(() => {
      const minute = new Date(Date.now() + 1_000); // inside the minute that has just begun
      if (fires(minute) && !running) {
        running = run().then(
          (result) => logger.info({ task: name, result }, 'scheduled task done'),
          (error: unknown) => logger.error({ err: error, task: name }, 'scheduled task failed; its next run retries'),
        ).finally(() => { running = undefined; });
      }
      scheduleNext();
    }, delay);
    timer.unref();
  };
  scheduleNext();
  return async () => {
    clearTimeout(timer);
    await running;
  };
}
