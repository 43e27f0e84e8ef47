// A partner's own SQL source for tests: a separate database on the harness PostgreSQL with an
// ordinary LOGIN role that may only read its tables, as an operator would register it.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface TestSourceDatabase {
  /** The read-only role's connection string to the source database (what a partner registers). */
  readonly url: string;
  readonly role: string;
  readonly database: string;
  /** Runs SQL as the superuser in the source database (create tables, grant them). */
  admin(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

/** `stampedeUrl`: the harness's superuser URL of Stampede's database (inject('databaseUrl')). */
export const withDatabase = (url: string, database: string) => url.replace(/\/[^/?]+(\?|$)/, `/${database}$1`);
export const withCredentials = (url: string, user: string, password: string) => url.replace(/^postgres(ql)?:\/\/[^@]*@/, `postgres://${user}:${encodeURIComponent(password)}@`);

export async function createSourceDatabase(stampedeUrl: string): Promise<TestSourceDatabase> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 12);
  const database = `src_${suffix}`;
  const role = `src_reader_${suffix}`;
  const password = randomUUID();
  const root = new pg.Client({ connectionString: stampedeUrl });
  await root.connect();
  try {
    await root.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await root.query(`CREATE DATABASE ${database}`);
  } finally {
    await root.end();
  }
  const admin = new pg.Pool({ connectionString: withDatabase(stampedeUrl, database), max: 2 });
  return {
    url: withCredentials(withDatabase(stampedeUrl, database), role, password),
    role,
    database,
    admin: (sql, values) => admin.query(sql, values),
    drop: async () => {
      await admin.end();
      const client = new pg.Client({ connectionString: stampedeUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await client.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await client.end();
      }
    },
  };
}
