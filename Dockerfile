# One image for the supernode and the peers of the docker-compose demo.
FROM node:22-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json .npmrc ./
COPY packages ./packages
# npm ci runs `prepare`, which compiles the TypeScript and bundles each program
RUN npm ci --no-audit --no-fund && npm cache clean --force
ENV CONF_CHAT_HOME=/data \
    CONF_CHAT_HOST=0.0.0.0 \
    NODE_ENV=production
VOLUME /data
CMD ["node", "packages/cli/dist/conf-chat.js"]
