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

export async function summariseCpuProfiles(dir: string, root: string, top = 15): Promise<string> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile'));
  const sections: string[] = [];
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
    const rows = (map: Map<string, number>) =>
      [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, micros]) => [name, (micros / 1e6).toFixed(2), `${((micros / busy) * 100).toFixed(1)}%`]);
    sections.push(
      `${file}: ${(busy / 1e6).toFixed(1)} s busy (idle excluded)\n` +
      `${formatTable(['self time by package / file', 's', 'share'], rows(byCategory))}\n\n` +
      `${formatTable(['hottest functions (self time)', 's', 'share'], rows(byFunction))}`,
    );
  }
  return sections.join('\n\n');
}
