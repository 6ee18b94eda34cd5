# The frontier image: the whole monorepo, built, with the `frontier` CLI as
# entrypoint. One image serves every role; the command picks it:
#   docker run frontier shard --id shard-0 --slots 0/2
#   docker run frontier coordinator --metrics-host 0.0.0.0   (metrics on :9465)
#   docker run frontier status
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN corepack enable
# Dependencies first, so source edits do not reinstall them.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/core/package.json packages/core/
COPY packages/protocol/package.json packages/protocol/
COPY packages/transport/package.json packages/transport/
COPY packages/metrics/package.json packages/metrics/
COPY packages/nats-server/package.json packages/nats-server/
COPY packages/nats-testing/package.json packages/nats-testing/
COPY packages/shard/package.json packages/shard/
COPY packages/cluster/package.json packages/cluster/
COPY packages/coordinator/package.json packages/coordinator/
COPY packages/client/package.json packages/client/
COPY packages/console/package.json packages/console/
COPY packages/cli/package.json packages/cli/
# The peer benchmark is a workspace member too (its peers are devDependencies, pruned below).
COPY packages/bench-peers/package.json packages/bench-peers/
RUN pnpm install --frozen-lockfile
COPY tsconfig.base.json tsconfig.json turbo.json ./
COPY packages packages
RUN pnpm build && pnpm prune --prod

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
# Shard data lives here; mount a volume per shard (same id, same volume). NATS keys
# (`frontier credentials --dir /credentials`) live in /credentials, a volume of their own.
RUN mkdir -p /data /credentials && chown node:node /data /credentials
VOLUME ["/data"]
USER node
ENTRYPOINT ["node", "/app/packages/cli/dist/bin.js"]
CMD ["--help"]
