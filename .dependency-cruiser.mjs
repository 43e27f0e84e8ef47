// Imports point down (docs/architecture.md "Layers", docs/decisions/130): composition root →
// domains side by side → http/ and infra/ → config.ts, errors.ts and user-id.ts.
// `npm run lint:deps` checks it in CI (.ci/run).
const domains = '(claims|coupons|points|jobs|partners)';
const bottom = '^src/(config|errors|user-id)[.]ts$';
const root = 'src/(app|server|cluster|cli|cli-client|runtime|workers|job-queue|context)[.]ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No import cycles, type-only ones included: a cycle means two modules are one.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'Folders import one way: two domains that need each other are one domain or share a lower one.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'domain-http-only-from-routes',
      comment: "Only a domain's *-routes.ts files speak HTTP (and the claim route's two halves, claim-answers.ts and claim-fast-path.ts); rules and repositories stay reusable from jobs and the CLI.",
      severity: 'error',
      from: { path: `^src/${domains}/`, pathNot: '(-routes|/claim-answers|/claim-fast-path)[.]ts$' },
      to: { path: '^src/http/' },
    },
    {
      name: 'infra-imports-no-domain',
      comment: 'infra/ is below every domain.',
      severity: 'error',
      from: { path: '^src/infra/' },
      to: { path: [`^src/${domains}/`, '^src/http/', root] },
    },
    {
      name: 'http-imports-no-domain',
      comment: 'http/ is below every domain (app.ts registers the routes); it knows the context by its types.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: [`^src/${domains}/`, root], pathNot: 'src/context[.]ts$' },
    },
    {
      name: 'jobs-know-no-job-kinds',
      comment: 'jobs/ runs jobs; the kinds (distribution, accrual, ...) register themselves from the composition root.',
      severity: 'error',
      from: { path: '^src/jobs/' },
      to: { path: '^src/(claims|coupons|points)/' },
    },
    {
      name: 'domains-import-no-composition-root',
      comment: 'Domains receive the context; only its types (context.ts) may be imported.',
      severity: 'error',
      from: { path: [`^src/${domains}/`, '^src/(http|infra)/'] },
      to: { path: root, pathNot: 'src/context[.]ts$' },
    },
    {
      name: 'context-is-types-only',
      comment: 'context.ts declares what a domain receives; runtime.ts builds it.',
      severity: 'error',
      from: { path: 'src/context[.]ts$' },
      to: { dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'bottom-imports-nothing-above',
      comment: 'config.ts, errors.ts and user-id.ts import nothing of ours above them.',
      severity: 'error',
      from: { path: bottom },
      to: { path: '^src/', pathNot: bottom },
    },
  ],
  options: {
    includeOnly: '^src/',
    // Tests import across layers to set up what they check; nothing imports a test, so no cycle runs through one.
    exclude: { path: '[.]test[.]ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
};
