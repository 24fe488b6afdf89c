# syntax=docker/dockerfile:1
#
# AlphaNet Zoo inference server. Two images from one file:
#   CPU  (default):  docker build -t alphanet-zoo .
#   CUDA:            docker build -t alphanet-zoo:cuda --build-arg VARIANT=cuda .   (or --target cuda)
# The zoo baked into the image is models/ (what the training pipeline publishes); any other zoo
# directory of the build context can be chosen with --build-arg ZOO=<dir>, e.g. test/fixtures/zoo
# for a demo image. The build fails if that directory holds no valid zoo. See docs/ecosystem.md.

ARG NODE_IMAGE=node:20-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG VARIANT=cpu

# ---- build: compile TypeScript, validate the zoo in onnxruntime-node ----------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY server/ ./server/
RUN npm run build
ARG ZOO=models
COPY ${ZOO}/ /zoo/
RUN test -f /zoo/manifest.json || { echo "error: ${ZOO}/manifest.json not found: publish a zoo into models/ (npm run pipeline) or build with --build-arg ZOO=<zoo dir>" >&2; exit 1; }
# Every model must load and reproduce its reference output here, or the image is not built.
RUN node dist/server/cli/validate-zoo.js /zoo --runs 3 --intra-op-threads 1 > /tmp/zoo-validation.json \
    || { cat /tmp/zoo-validation.json >&2; exit 1; }

# ---- production dependencies, with onnxruntime-node binaries for this platform only ------------
# onnxruntime-node ships every platform's binaries (~290 MB); only linux/<this arch> is kept.
FROM ${NODE_IMAGE} AS deps-cpu
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund \
    && cd node_modules/onnxruntime-node/bin/napi-v6 \
    && find . -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} + \
    && find linux -mindepth 1 -maxdepth 1 ! -name "$(node -p process.arch)" -exec rm -rf {} + \
    && npm cache clean --force

# onnxruntime-node's postinstall fetches the CUDA 12 provider libraries (NuGet) at build time.
# The CUDA provider exists for linux/x64 only.
FROM ${NODE_IMAGE} AS deps-cuda
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev --no-audit --no-fund \
    && cd node_modules/onnxruntime-node/bin/napi-v6 \
    && test -f linux/x64/libonnxruntime_providers_cuda.so \
    && test -f linux/x64/libonnxruntime_providers_shared.so \
    && find . -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} + \
    && find linux -mindepth 1 -maxdepth 1 ! -name x64 -exec rm -rf {} + \
    && npm cache clean --force

# ---- CPU image -----------------------------------------------------------------------------------
# MALLOC_ARENA_MAX=2: glibc gives each decoding thread its own malloc arena, and libvips' large,
# short-lived pixel buffers fragment them, so RSS stays high after a burst of big images (the
# remedy sharp's documentation gives). Two arenas keep it near the working set.
FROM ${NODE_IMAGE} AS cpu
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GRPC_PORT=8081 \
    ZOO_DIR=/app/models \
    EXECUTION_PROVIDER=cpu \
    MALLOC_ARENA_MAX=2
WORKDIR /app
# A fixed numeric non-root user, the same in both images (Kubernetes runAsNonRoot checks the number).
RUN groupadd --system --gid 10001 alphanet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin alphanet
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY server/web/assets/ ./server/web/assets/
# The gRPC service definitions, loaded at run time (server/grpc/proto.ts).
COPY server/grpc/proto/ ./server/grpc/proto/
COPY --from=build /zoo/ ./models/
USER 10001:10001
# 8080: HTTP (v1 API, Open Inference Protocol REST, metrics); 8081: gRPC (Open Inference Protocol, health).
EXPOSE 8080 8081
# No curl in the image: Node's own fetch probes the liveness route.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server/main.js"]

# ---- CUDA image: CUDA 12 + cuDNN 9 runtime, Node copied from the official image ------------------
FROM ${NODE_IMAGE} AS node-runtime

FROM ${CUDA_IMAGE} AS cuda
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GRPC_PORT=8081 \
    ZOO_DIR=/app/models \
    EXECUTION_PROVIDER=cuda \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=node-runtime /usr/local/bin/node /usr/local/bin/node
RUN node --version \
    && groupadd --system --gid 10001 alphanet \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin alphanet
COPY --from=deps-cuda /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY server/web/assets/ ./server/web/assets/
# The gRPC service definitions, loaded at run time (server/grpc/proto.ts).
COPY server/grpc/proto/ ./server/grpc/proto/
COPY --from=build /zoo/ ./models/
USER 10001:10001
# 8080: HTTP (v1 API, Open Inference Protocol REST, metrics); 8081: gRPC (Open Inference Protocol, health).
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server/main.js"]

# ---- the image built without --target: cpu unless --build-arg VARIANT=cuda -----------------------
FROM ${VARIANT} AS final
