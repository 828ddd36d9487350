#!/bin/sh
# Entry point of the demo's `shadowplane` container (docker-compose.yml). The image is
# plain node:20-bookworm-slim; the repository is mounted read-only at /src. This builds
# Shadowplane inside the container, so the host's node_modules and dist/ are never
# touched, and then runs `shadowplane` with the compose service's `command`
# (`serve --registry consul ...`).
set -eu
cd /app
cp -r /src/package.json /src/package-lock.json /src/tsconfig.json /src/tsconfig.build.json /src/src .
echo "shadowplane demo: npm ci and build (the first start takes a minute)"
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
exec node --max-semi-space-size=64 --initial-old-space-size=256 dist/cli/main.js "$@"
