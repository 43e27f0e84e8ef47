// The HTTP load generators run as processes of their own, so their CPU is not the server's. The
// parent writes the planned requests and the plan to files, the child sends them and writes every
// answer back, and prints one JSON result line on stdout.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where a load generator reads its planned requests and writes its answers. */
export interface LoadFiles {
  readonly requestsFile: string;
  readonly answersFile: string;
}

/** Runs the load generator `script` over `requests` with `plan`; files go to `dir` under `name`. */
export async function runLoadProcess<Result, Answer>(
  script: string, dir: string, name: string, plan: object, requests: unknown[],
): Promise<{ result: Result; answers: Answer[] }> {
  const files: LoadFiles = { requestsFile: path.join(dir, `${name}-requests.json`), answersFile: path.join(dir, `${name}-answers.json`) };
  const planFile = path.join(dir, `${name}-plan.json`);
  await writeFile(files.requestsFile, JSON.stringify(requests));
  await writeFile(planFile, JSON.stringify({ ...plan, ...files }));
  const child = spawn(process.execPath, ['--import', 'tsx', script, planFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as Result;
  const answers = JSON.parse(await readFile(files.answersFile, 'utf8')) as Answer[];
  return { result, answers };
}
