# The image of the docker-compose demo: one image for the supernode and the peers.
#
#   docker build -t conf-chat .
#   docker build --build-arg BASE_IMAGE=<image> -t conf-chat .
#
# BASE_IMAGE: a Debian-based image with Node 22, npm and a user `node` (the official
# image by default; where no image registry is reachable, scripts/docker-base-image.sh
# builds a local stand-in). Two stages: the first installs everything and builds; the
# final one holds only each program bundled into one file and what the bundles load from
# node_modules (native addons: LevelDB, libsodium; the password dictionaries a worker
# loads), pruned to what runs here (libsodium's library for this platform only; the
# dictionaries' CommonJS build, without their sources and maps): no compiler, no dev
# dependencies, no TypeScript sources.
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json .npmrc ./
COPY scripts ./scripts
COPY packages ./packages
# npm ci runs `prepare`: tsc -b, then the bundles (scripts/build-bundles.mjs)
RUN npm ci --no-audit --no-fund
RUN mkdir -p /out/packages/cli/dist /out/packages/supernode/dist \
 && cp packages/cli/dist/conf-chat.js /out/packages/cli/dist/ \
 && cp packages/supernode/dist/conf-chat-supernode.js /out/packages/supernode/dist/ \
 && node scripts/runtime-modules.mjs | xargs -I{} cp -a --parents {} /out/ \
 && arch="linux-$(node -p process.arch)" \
 && find /out/node_modules/sodium-native/prebuilds -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} + \
 && rm -rf /out/node_modules/sodium-native/prebuilds/*/*.bare /out/node_modules/sodium-native/binding.cc \
      /out/node_modules/sodium-native/CMakeLists.txt /out/node_modules/sodium-native/extensions \
 && rm -rf /out/node_modules/@zxcvbn-ts/*/src \
 && find /out/node_modules/@zxcvbn-ts -name '*.mjs' -delete \
 && find /out/node_modules \( -name '*.map' -o -name '*.ts' \) -delete \
 && printf '{ "name": "conf-chat", "private": true, "type": "module" }\n' > /out/package.json

FROM ${BASE_IMAGE}
WORKDIR /app
COPY --from=build /out ./
RUN mkdir -p /data && chown node:node /data
USER node
# CONF_CHAT_STATUS_FILE: the programs keep their state there (starting, joined, joining,
# stopping); the health check reads it. NODE_OPTIONS and MALLOC_MMAP_THRESHOLD_: the
# programs' V8 flags and malloc setting (packages/program/src/heap.ts), for every command
# the image runs
ENV CONF_CHAT_HOME=/data \
    CONF_CHAT_HOST=0.0.0.0 \
    CONF_CHAT_STATUS_FILE=/tmp/conf-chat.status \
    NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=1 \
    MALLOC_MMAP_THRESHOLD_=16384
VOLUME /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["sh", "-c", "read -r state rest < \"$CONF_CHAT_STATUS_FILE\" && [ \"$state\" = joined ]"]
CMD ["node", "packages/cli/dist/conf-chat.js"]
