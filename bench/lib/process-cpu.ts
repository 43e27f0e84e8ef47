// CPU seconds spent by each process this benchmark started, read from /proc (Linux), to say
// where the time of a run went on a shared two-core machine: the server under test, PostgreSQL,
// redis-server. Only live processes are seen, which is what the long-lived servers are.
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface ProcessTimes {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  readonly ticks: number;
}

function readAll(): Map<number, ProcessTimes> {
  const processes = new Map<number, ProcessTimes>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid … utime stime …": comm may hold spaces, so split after its ')'.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    processes.set(Number(entry), {
      pid: Number(entry),
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      ticks: Number(fields[11]) + Number(fields[12]),
    });
  }
  return processes;
}

export type CpuSnapshot = Map<number, ProcessTimes>;

/** Every descendant of this process, with its CPU ticks so far. */
export function cpuSnapshot(): CpuSnapshot {
  const all = readAll();
  const descendants = new Map<number, ProcessTimes>();
  const isDescendant = (pid: number): boolean => {
    for (let current = all.get(pid); current; current = all.get(current.ppid)) {
      if (current.ppid === process.pid) return true;
    }
    return false;
  };
  for (const [pid, times] of all) if (isDescendant(pid)) descendants.set(pid, times);
  return descendants;
}

/**
 * CPU seconds between two snapshots, grouped: processes in the tree of `serverPid` as "server",
 * then by command name ("postgres", "redis-server", …). Processes born in between count from zero.
 */
export function cpuSecondsBetween(before: CpuSnapshot, after: CpuSnapshot, serverPids: readonly number[]): Record<string, number> {
  const inServerTree = (pid: number): boolean => {
    for (let current = after.get(pid); current; current = after.get(current.ppid)) {
      if (serverPids.includes(current.pid)) return true;
    }
    return false;
  };
  const groups: Record<string, number> = {};
  for (const [pid, times] of after) {
    const group = inServerTree(pid) ? 'server' : times.comm;
    const spent = (times.ticks - (before.get(pid)?.ticks ?? 0)) / CLOCK_TICKS_PER_SECOND;
    groups[group] = (groups[group] ?? 0) + spent;
  }
  return groups;
}

/** Node processes in the tree of `rootPid` (a node:cluster primary and its workers), itself included. */
export function nodeProcessesInTree(snapshot: CpuSnapshot, rootPid: number): number {
  let count = 0;
  for (const [pid, times] of snapshot) {
    if (!times.comm.startsWith('node')) continue;
    for (let current = snapshot.get(pid); current; current = snapshot.get(current.ppid)) {
      if (current.pid === rootPid) {
        count++;
        break;
      }
    }
  }
  return count;
}

/** The whole machine's CPU ticks so far, busy and idle (/proc/stat's first line). */
export interface MachineTicks {
  readonly busy: number;
  readonly idle: number;
}

export function machineTicks(): MachineTicks {
  // "cpu  user nice system idle iowait irq softirq steal …"
  const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait };
}

/**
 * Where the machine's CPU went during a run besides the measured groups: `otherSeconds` is busy
 * time no measured process (nor the benchmark itself) accounts for, `idleSeconds` time no one used.
 */
export interface MachineAccount {
  readonly busySeconds: number;
  readonly otherSeconds: number;
  readonly idleSeconds: number;
}

export function machineAccount(before: MachineTicks, after: MachineTicks, measuredSeconds: number): MachineAccount {
  const busySeconds = (after.busy - before.busy) / CLOCK_TICKS_PER_SECOND;
  return { busySeconds, otherSeconds: Math.max(0, busySeconds - measuredSeconds), idleSeconds: (after.idle - before.idle) / CLOCK_TICKS_PER_SECOND };
}
