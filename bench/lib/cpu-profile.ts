// Summarises V8 CPU profiles (`node --cpu-prof`) into where a server's time went: self time by
// package / source file, and the hottest functions. Enough to tell "our code" from "Fastify",
// "the Redis client", "the PostgreSQL driver", "sockets" and "garbage collection".
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatTable } from './stats.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame belongs: a package, a project file, a node internal area, or a V8 pseudo-frame. */
function category(frame: ProfileNode['callFrame'], root: string): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native code)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url.startsWith('file://') ? path.relative(root, new URL(url).pathname) : url;
}

/** Self time of one profile: busy seconds, and the top entries as [name, seconds, share of busy]. */
export interface ProfileSummary {
  readonly file: string;
  readonly busySeconds: number;
  readonly byCategory: Array<[name: string, seconds: number, share: number]>;
  readonly byFunction: Array<[name: string, seconds: number, share: number]>;
}

/** Profiles that spent less than this busy (a cluster primary that serves nothing) are left out. */
const MIN_BUSY_SECONDS = 0.5;

export async function cpuProfileSummaries(dir: string, root: string, top = 15): Promise<ProfileSummary[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile')).sort();
  const summaries: ProfileSummary[] = [];
  for (const file of files) {
    const profile = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CpuProfile;
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const byCategory = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let busy = 0;
    profile.samples.forEach((id, index) => {
      const frame = nodes.get(id)!.callFrame;
      const micros = profile.timeDeltas[index + 1] ?? 0; // a delta is the time until the next sample
      if (frame.functionName === '(idle)') return;
      busy += micros;
      const where = category(frame, root);
      byCategory.set(where, (byCategory.get(where) ?? 0) + micros);
      const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    });
    const rows = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([name, micros]): [string, number, number] => [name, Math.round(micros / 1e4) / 100, Math.round((micros / busy) * 1000) / 1000]);
    summaries.push({ file, busySeconds: Math.round(busy / 1e5) / 10, byCategory: rows(byCategory), byFunction: rows(byFunction) });
  }
  return summaries;
}

export function formatCpuProfileSummaries(summaries: readonly ProfileSummary[]): string {
  const rows = (entries: ProfileSummary['byFunction']) => entries.map(([name, seconds, share]) => [name, seconds.toFixed(2), `${(share * 100).toFixed(1)}%`]);
  return summaries.map((summary) => `${summary.file}: ${summary.busySeconds.toFixed(1)} s busy (idle excluded)\n` +
    `${formatTable(['self time by package / file', 's', 'share'], rows(summary.byCategory))}\n\n` +
    `${formatTable(['hottest functions (self time)', 's', 'share'], rows(summary.byFunction))}`).join('\n\n');
}

export async function summariseCpuProfiles(dir: string, root: string, top = 15): Promise<string> {
  return formatCpuProfileSummaries(await cpuProfileSummaries(dir, root, top));
}

/**
 * The busy main threads only: `node --cpu-prof` names files CPU.<date>.<time>.<pid>.<thread>.<seq>;
 * thread 0 is the main thread (thread 1 under `--import tsx` is its module loader, busy at start-up).
 */
export const busyProfiles = (summaries: readonly ProfileSummary[]): ProfileSummary[] =>
  summaries.filter((summary) => summary.busySeconds >= MIN_BUSY_SECONDS && /\.\d+\.0\.\d+\.cpuprofile$/.test(summary.file));
