// `stampede <command>`. Arguments are parsed (node:util parseArgs) and --help / --version answered
// before any configuration is read or any module with side effects is loaded: the server's modules
// (embedded PostgreSQL, pools, workers) are imported only by the command that runs them.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];
type Values = Record<string, string | boolean | undefined>;

interface Command {
  /** `partner create`: words after `stampede`. */
  readonly name: string;
  readonly synopsis: string;
  readonly summary: string;
  readonly details?: string;
  readonly options?: Options;
  readonly positionals: readonly string[];
  /** Exit code; undefined keeps the process running (serve, worker). */
  run(values: Values, positionals: string[]): Promise<number | undefined>;
}

const CLIENT_OPTIONS = {
  url: { type: 'string' },
} as const satisfies Options;

const COMMANDS: readonly Command[] = [
  {
    name: 'serve',
    synopsis: 'stampede serve',
    summary: 'run the HTTP API, and the workers unless STAMPEDE_WORKERS=off (npm start)',
    details: 'Configuration comes from the environment (docs/configuration.md). With no DATABASE_URL an embedded\n' +
      'PostgreSQL is started under STAMPEDE_DATA_DIR (./.stampede) and the API listens on 127.0.0.1:3000.',
    positionals: [],
    run: async () => {
      const { config, logger } = await boot();
      const { serve } = await import('./cluster.ts');
      await serve(config, logger);
      return undefined;
    },
  },
  {
    name: 'worker',
    synopsis: 'stampede worker',
    summary: 'run the workers only (claim persistence, bulk jobs, webhooks, schedules)',
    details: 'Serves /metrics and /health on STAMPEDE_METRICS_PORT when it is set.',
    positionals: [],
    run: async () => {
      const { config, logger } = await boot();
      const { startClosingOnSignals, startServer } = await import('./server.ts');
      await startClosingOnSignals(startServer(config, logger, { api: false, workers: true }), logger, config.shutdownTimeoutMs);
      return undefined;
    },
  },
  {
    name: 'migrate',
    synopsis: 'stampede migrate',
    summary: 'apply pending database migrations and exit',
    positionals: [],
    run: async () => {
      const { config, logger } = await boot();
      const { openRuntime } = await import('./runtime.ts');
      const runtime = await openRuntime(config, logger, { checkRedisDurability: false, runMigrations: true });
      await runtime.close();
      return 0;
    },
  },
  {
    name: 'reconcile',
    synopsis: 'stampede reconcile <templateId>',
    summary: "compare a template's claim state in Redis with PostgreSQL; exits 1 on drift",
    positionals: ['templateId'],
    run: async (_values, [templateId]) => {
      const { config, logger } = await boot();
      const { openRuntime } = await import('./runtime.ts');
      const { runReconcileCommand } = await import('./claims/reconcile.ts');
      const runtime = await openRuntime(config, logger, { checkRedisDurability: false, runMigrations: false });
      return runReconcileCommand(runtime.ctx, templateId, process.stdout).finally(() => runtime.close());
    },
  },
  {
    name: 'partner create',
    synopsis: 'stampede partner create <name> [--url URL] [--rate-limit N] [--json]',
    summary: 'create a partner on a running server and print its API key (shown once)',
    details: 'Calls POST /v1/partners of the server at --url (default: STAMPEDE_URL, else http://127.0.0.1:$PORT,\n' +
      'PORT defaulting to 3000) with the admin token from STAMPEDE_ADMIN_TOKEN, else from the file\n' +
      '$STAMPEDE_DATA_DIR/admin-token (./.stampede/admin-token) that `stampede serve` writes in embedded mode.\n' +
      'Prints the API key alone on stdout (KEY=$(stampede partner create Acme)); --json prints the whole answer.',
    options: { ...CLIENT_OPTIONS, 'rate-limit': { type: 'string' }, json: { type: 'boolean' } },
    positionals: ['name'],
    run: async (values, [name]) => (await import('./cli-client.ts')).createPartner({
      url: values.url as string | undefined,
      name: name!,
      rateLimit: values['rate-limit'] as string | undefined,
      json: values.json === true,
    }),
  },
  {
    name: 'jobs watch',
    synopsis: 'stampede jobs watch <jobId> [--url URL] [--api-key KEY]',
    summary: 'follow a bulk job with a progress bar (rate, ETA) until it ends; exits 1 unless it succeeds',
    details: 'Polls GET /v1/jobs/<jobId> of the server at --url (default: STAMPEDE_URL, else\n' +
      'http://127.0.0.1:$PORT) with the partner API key from STAMPEDE_API_KEY (or --api-key, which other\n' +
      'users of the machine can see in the process list). Exit status: 0 SUCCEEDED, 1 FAILED or CANCELLED\n' +
      'or an error.',
    options: { ...CLIENT_OPTIONS, 'api-key': { type: 'string' } },
    positionals: ['jobId'],
    run: async (values, [jobId]) => (await import('./cli-client.ts')).watchJob({
      url: values.url as string | undefined,
      apiKey: values['api-key'] as string | undefined,
      jobId: jobId!,
    }),
  },
];

const GROUPS = [...new Set(COMMANDS.filter((command) => command.name.includes(' ')).map((command) => command.name.split(' ')[0]!))];

function usage(commands: readonly Command[] = COMMANDS): string {
  const brief = (command: Command) => [command.name, ...command.positionals.map((name) => `<${name}>`)].join(' ');
  const width = Math.max(...commands.map((command) => brief(command).length));
  const lines = commands.map((command) => `  ${brief(command).padEnd(width)}  ${command.summary}`);
  return `usage: stampede <command> [options]\n\n${lines.join('\n')}\n\n` +
    '  stampede <command> --help   options of one command\n  stampede --version          the version\n';
}

function commandHelp(command: Command): string {
  return `usage: ${command.synopsis}\n\n${command.summary}\n${command.details ? `\n${command.details}\n` : ''}`;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

class UsageError extends Error {}

/** Runs a command line; resolves with the exit code, or undefined when the command keeps running. */
export async function run(argv: readonly string[]): Promise<number | undefined> {
  const out = (text: string) => { process.stdout.write(text); return 0; };
  const refuse = (message: string, text: string) => { process.stderr.write(`stampede: ${message}\n\n${text}`); return 2; };

  const [first, second] = argv;
  if (first === undefined) return refuse('a command is required', usage());
  if (first === '--help' || first === '-h' || first === 'help') return argv.length === 1 ? out(usage()) : refuse(`unexpected argument: ${argv[1]}`, usage());
  if (first === '--version' || first === '-V') return argv.length === 1 ? out(`${version()}\n`) : refuse(`unexpected argument: ${argv[1]}`, usage());

  let command: Command | undefined;
  let rest: string[];
  if (GROUPS.includes(first)) {
    const members = COMMANDS.filter((candidate) => candidate.name.startsWith(`${first} `));
    if (second === '--help' || second === '-h') return out(usage(members));
    command = members.find((candidate) => candidate.name === `${first} ${second}`);
    if (!command) return refuse(second === undefined ? `${first}: a subcommand is required` : `${first}: unknown subcommand: ${second}`, usage(members));
    rest = argv.slice(2);
  } else {
    command = COMMANDS.find((candidate) => candidate.name === first);
    if (!command) return refuse(`unknown command: ${first}`, usage());
    rest = argv.slice(1);
  }

  const beforeTerminator = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (beforeTerminator.includes('--help') || beforeTerminator.includes('-h')) return out(commandHelp(command));
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: rest, options: command.options ?? {}, allowPositionals: true, strict: true });
    values = parsed.values as Values; // no option is `multiple`
    positionals = parsed.positionals;
    if (positionals.length !== command.positionals.length) {
      throw new UsageError(positionals.length < command.positionals.length
        ? `missing <${command.positionals[positionals.length]}>`
        : `unexpected argument: ${positionals[command.positionals.length]}`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      return refuse((error as Error).message, commandHelp(command));
    }
    throw error;
  }
  return command.run(values, positionals);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const code = await run(argv);
    if (code !== undefined) process.exit(code);
  } catch (error) {
    const { ConfigError } = await import('./config.ts');
    const { SetupError } = await import('./infra/setup-error.ts');
    // Problems the operator fixes (a bad setting, a folder PostgreSQL cannot reach): their words, no stack.
    if (error instanceof ConfigError || error instanceof SetupError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    const { createLogger } = await import('./infra/logger.ts');
    createLogger('fatal').fatal({ err: error }, `stampede ${argv.join(' ')} failed`);
    process.exit(1);
  }
}

/** Configuration and logger for the commands that start the server's parts. */
async function boot() {
  const { loadConfig } = await import('./config.ts');
  const { createLogger } = await import('./infra/logger.ts');
  const config = loadConfig();
  return { config, logger: createLogger(config.logLevel) };
}
