# sp-connect service image. Build: `docker build -t sp-connect .`; run: docs/deployment.md ("Container image").
#
# The build stage compiles src/ to dist/ and packs the package exactly as `npm pack` does for npm, so the image
# holds the same files a user installs from the registry (package.json "files"), with the production
# dependencies pinned by package-lock.json. The runtime stage runs that package's bin as a non-root user and
# writes nothing outside /data, so it runs with a read-only root filesystem.
# test/integration/deployment-files.test.ts checks the entry command against package.json "bin" and runs it
# from a packed tarball with only the data folder writable (CI has no registry to pull the base image from).

ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency's install script would download a second Node; the image's
# Node 24 runs the build.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json README.md ./
COPY src ./src
RUN npm run build \
  && npm pack --ignore-scripts --pack-destination /tmp \
  && mkdir /app \
  && tar -xzf /tmp/sp-connect-*.tgz -C /app --strip-components=1 \
  && cp package-lock.json /app/
WORKDIR /app
# The tarball's package.json and the lockfile: production dependencies only, exact versions.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
  && rm package-lock.json \
  && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
  PORT=8080 \
  SP_CONNECT_HOST=0.0.0.0 \
  DATABASE_URL=/data/sp-connect.db
# Owned by root and not writable by the service user, even without --read-only.
COPY --from=build --chown=0:0 /app /app
# The only folder the service writes to: the SQLite database (ignored with a postgres:// DATABASE_URL).
RUN mkdir -p /data && chown 1000:1000 /data && chmod 0700 /data
VOLUME ["/data"]
WORKDIR /app
# 1000 is the base image's `node` user; numeric so Kubernetes' runAsNonRoot can check it.
USER 1000:1000
EXPOSE 8080
# The slim image has no curl: Node's own fetch asks /healthz (the process answers and reads the database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The package's bin (package.json "bin": dist/cli/main.js), run by node directly: no npm/npx at runtime.
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve"]
